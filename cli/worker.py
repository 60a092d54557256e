"""`atelier worker --queue inference|post|training`."""

from __future__ import annotations

import asyncio

from gpu_worker.settings import make_worker
from studio.settings import load_settings


def run_worker(kind: str) -> int:
    settings = load_settings()
    if kind in ("inference", "training"):  # the post worker never imports torch
        from gpu_worker.device import pick_device

        pick_device(settings.device)  # a named device that is not usable: one line, exit 2
    if kind in ("inference", "training"):
        from studio.catalogue import load_catalogue

        load_catalogue(settings.models_file)  # jobs name models by id: this worker's catalogue decides
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = make_worker(settings, kind)  # rides out Redis outages: it never exits for one
    worker.run()
    return 0
