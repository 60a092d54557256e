"""`atelier worker --queue inference|post|training`."""

from __future__ import annotations

import asyncio

from arq.worker import create_worker

from gpu_worker.settings import worker_settings
from studio.settings import load_settings


def run_worker(kind: str) -> int:
    settings = load_settings()
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = create_worker(worker_settings(settings, kind))
    worker.run()
    return 0
