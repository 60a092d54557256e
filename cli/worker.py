"""`atelier worker --queue inference|post|training`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from arq.worker import Worker

from gpu_worker.settings import make_worker
from studio.health_server import start_health_server
from studio.jsonlog import configure_logging
from studio.metrics import watch_gpu_memory
from studio.settings import load_settings


def run_worker(kind: str) -> int:
    settings = load_settings()
    configure_logging(settings.log_format)
    if kind in ("inference", "training"):  # the post worker never imports torch
        from gpu_worker.device import pick_device

        pick_device(settings.device)  # a named device that is not usable: one line, exit 2
        watch_gpu_memory()  # where NVML and a GPU exist
    if kind in ("inference", "training"):
        from studio.catalogue import load_catalogue

        load_catalogue(settings.models_file)  # jobs name models by id: this worker's catalogue decides
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = make_worker(settings, kind)  # rides out Redis outages: it never exits for one
    health = loop.run_until_complete(start_health_server(settings, ready=_ready_after_startup(worker)))
    try:
        worker.run()
    finally:
        if health is not None and not loop.is_closed():
            loop.run_until_complete(health.stop())
    return 0


def _ready_after_startup(worker: Worker) -> Callable[[], bool]:
    """/readyz answers 200 once the worker's startup (device, model cache) has run."""
    started = False
    original = worker.on_startup

    async def on_startup(ctx: dict[str, Any]) -> None:
        nonlocal started
        if original is not None:
            await original(ctx)
        started = True

    worker.on_startup = on_startup
    return lambda: started
