"""Wiring: settings -> catalogue, store, queue, artifacts -> the Studio use cases. In one place."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from studio.artifacts import Artifacts
from studio.catalogue import load_catalogue
from studio.ideate import load_vocabulary
from studio.queue import JobQueue
from studio.service import Studio
from studio.settings import Settings
from studio.store import Store
from studio.styles import load_styles


@contextlib.asynccontextmanager
async def open_studio(settings: Settings) -> AsyncIterator[Studio]:
    catalogue = load_catalogue(settings.models_file)  # invalid catalogue: fail before anything runs
    styles = load_styles(settings.styles_file)
    vocabulary = load_vocabulary(settings.vocabulary_file)
    queue = await JobQueue.connect(settings)
    try:
        async with Store(settings.database_path) as store:
            yield Studio(
                settings, catalogue, store, queue, Artifacts(settings.artifacts_dir), styles, vocabulary
            )
    finally:
        await queue.close()
