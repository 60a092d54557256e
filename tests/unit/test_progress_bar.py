"""The CLI's progress bar says the job runs even when it missed the worker's "started"."""

from __future__ import annotations

import io

from cli.progress import ProgressBar
from studio.jobs import ProgressEvent


async def test_a_missed_start_still_shows_running() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    bar.queued(0)
    for step in (1, 2):
        await bar(ProgressEvent(type="step", step=step, total=2))
    assert out.getvalue().splitlines() == [
        "queued (next in line)",
        "running",
        "[" + "#" * 28 + "] 2/2 steps  ETA 0.0s",
    ]


async def test_running_is_said_once() -> None:
    out = io.StringIO()
    bar = ProgressBar(out)
    await bar(ProgressEvent(type="started", attempt=2))
    await bar(ProgressEvent(type="step", step=1, total=1))
    assert out.getvalue().splitlines()[0] == "running (attempt 2)"
    assert sum(line.startswith("running") for line in out.getvalue().splitlines()) == 1
