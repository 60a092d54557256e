"""A job cancelled while it waits in the queue ends at once on the worker: no model is loaded."""

from __future__ import annotations

import asyncio

import pytest

from studio.app import open_studio
from studio.entities import Requester
from studio.errors import GenerationCancelled
from tests.integration.workers import Deployment

BOB = Requester("cli:bob", "bob")


async def test_a_job_cancelled_while_queued_never_loads_its_model(idle: Deployment) -> None:
    try:
        async with open_studio(idle.settings()) as studio:
            generation = await studio.generations.imagine(BOB, "a quiet pond --seed 2")
            await studio.generations.cancel(BOB, generation.id)  # no worker yet: it is still queued
            idle.start_worker("inference")
            with pytest.raises(GenerationCancelled):
                await asyncio.wait_for(studio.results.follow(generation.id), 120)
            assert (await studio.store.get_generation(generation.id)).status == "cancelled"
        log = idle.logs()
        assert f"{generation.id}:generate" in log  # the worker did take the job up
        assert "loaded model" not in log, log
    finally:
        idle.stop()
