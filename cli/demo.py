"""`atelier demo`: the offline demo. Builds the tiny models, starts both workers, runs imagine."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from studio.errors import StudioError
from studio.queue import JobQueue
from studio.settings import load_settings

DEMO_CATALOGUE = Path("config/models.demo.toml")
TINY_DIR = Path("models/tiny")


# The queues the demo starts a worker for: an image job needs inference, its grid needs post.
# Only these are waited for; the training queue has no worker here and that is fine.
DEMO_QUEUES = ("inference", "post")


async def _wait_for_workers(
    workers: list[subprocess.Popen[bytes]], logs: Path, timeout: float = 120.0
) -> None:
    queue = await JobQueue.connect(load_settings())
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = await queue.live_workers()
            if all(live[kind] for kind in DEMO_QUEUES):
                return
            stopped = [kind for kind, p in zip(DEMO_QUEUES, workers, strict=True) if p.poll() is not None]
            if stopped:  # a worker that exited will never report in: say so now, not in two minutes
                raise StudioError(
                    f"The {' and '.join(stopped)} worker stopped while starting; see its log in {logs}."
                )
            await asyncio.sleep(0.2)
        raise StudioError(
            f"The workers did not start within {timeout:.0f} seconds; see their logs in {logs}."
        )
    finally:
        await queue.close()


def demo(args: argparse.Namespace) -> int:
    from gpu_worker.tiny import make_tiny

    make_tiny(TINY_DIR)
    os.environ.setdefault("ATELIER_MODELS_FILE", str(DEMO_CATALOGUE))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logs = load_settings().data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # ./dev forwards Ctrl-C and SIGTERM as SIGTERM: unwind through ``finally`` so the workers
    # started here are stopped too, rather than left running after the demo is gone.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for kind in DEMO_QUEUES:
            with (logs / f"demo-worker-{kind}.log").open("ab") as log_file:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "cli", "worker", "--queue", kind],
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                    )
                )
        print(f"workers started (logs in {logs})", file=sys.stderr)
        asyncio.run(_wait_for_workers(workers, logs))
        from cli.main import main

        return main(["imagine", args.prompt, "--out", args.out])
    finally:
        _stop(workers)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (arq finishes or gives back its job), then wait; SIGKILL only a worker that hangs."""
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
