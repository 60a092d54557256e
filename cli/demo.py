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


async def _wait_for_workers(timeout: float = 120.0) -> None:
    queue = await JobQueue.connect(load_settings())
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = await queue.live_workers()
            if all(live.values()):
                return
            await asyncio.sleep(0.2)
        raise StudioError("The workers did not start within two minutes; run them by hand to see why.")
    finally:
        await queue.close()


def demo(args: argparse.Namespace) -> int:
    from gpu_worker.tiny import make_tiny

    make_tiny(TINY_DIR)
    os.environ.setdefault("ATELIER_MODELS_FILE", str(DEMO_CATALOGUE))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logs = load_settings().data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    workers = []
    for kind in ("inference", "post"):
        log_file = (logs / f"demo-worker-{kind}.log").open("ab")
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "cli", "worker", "--queue", kind], stdout=log_file, stderr=log_file
            )
        )
    print(f"workers started (logs in {logs})", file=sys.stderr)
    try:
        asyncio.run(_wait_for_workers())
        from cli.main import main

        return main(["imagine", args.prompt, "--out", args.out])
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
