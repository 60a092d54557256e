"""A one-line progress bar with an ETA, on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from studio.jobs import ProgressEvent


class ProgressBar:
    def __init__(self, stream: TextIO = sys.stderr, width: int = 28) -> None:
        self.stream = stream
        self.width = width
        self.started: float | None = None
        self.tty = stream.isatty()

    def queued(self, position: int | None) -> None:
        ahead = "next in line" if not position else f"{position} job(s) ahead"
        self._line(f"queued ({ahead})", final=not self.tty)

    async def __call__(self, event: ProgressEvent) -> None:
        if event.type == "started":
            self.started = time.monotonic()
            retry = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            self._line(f"running{retry}", final=not self.tty)
        elif event.type == "step" and event.total:
            if self.started is None:  # "started" went out before we listened: the job runs all the same
                self.started = time.monotonic()
                self._line("running", final=not self.tty)
            elapsed = time.monotonic() - (self.started or time.monotonic())
            eta = elapsed / event.step * (event.total - event.step) if event.step else 0.0
            filled = int(self.width * event.step / event.total)
            bar = "#" * filled + "-" * (self.width - filled)
            final = event.step == event.total
            if self.tty or final:
                self._line(f"[{bar}] {event.step}/{event.total} steps  ETA {eta:.1f}s", final=final)

    def _line(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
