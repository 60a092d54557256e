"""A follower that subscribes after the worker announced "started" still sees the run running.

Progress travels by pub/sub, which drops whatever was published before a subscriber listened. A
training worker that is idle takes a run at once and announces it before the bot (posting the
status message first) has subscribed; the steps that follow must still show the run as running
with its step and loss, not "queued" until the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio import jobs
from studio.app import open_studio
from studio.entities import Lora
from studio.forge import TrainingRequest
from tests.integration.test_forge import ALICE, LONG, dataset
from tests.integration.workers import Deployment


@pytest.fixture
def trainer(tiny_catalogue: Path, tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(data_dir=tmp_path, models_file=tiny_catalogue)
    dep.start_worker("training")
    yield dep
    dep.stop()


async def test_a_follower_that_missed_started_shows_the_run_running(trainer: Deployment) -> None:
    await trainer.wait_ready(("training",))
    async with open_studio(trainer.settings()) as studio:
        pubsub = studio.queue.redis.pubsub()
        lora_id = None
        try:
            # Listen on every progress channel first, so "started" is seen before the follower.
            await pubsub.psubscribe(jobs.progress_channel(trainer.prefix, "*"))
            request = TrainingRequest("lateball", "zqx", options=LONG)
            lora, _ = await studio.forge.train(ALICE, request, dataset(3))
            lora_id = lora.id
            async with asyncio.timeout(120):
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and jobs.deserialize(message["data"])["type"] == "started":
                        break
        finally:
            await pubsub.aclose()
        assert (await studio.store.loras.get(lora_id)).status == "queued"  # nobody relayed "started"

        running = asyncio.Event()

        async def on_update(run: Lora, event: jobs.ProgressEvent | None) -> None:
            if run.status == "running" and run.step > 0 and run.loss is not None:
                running.set()

        follow = asyncio.create_task(studio.forge.follow(lora_id, on_update))
        try:
            await asyncio.wait_for(running.wait(), 120)
            stored = await studio.store.loras.get(lora_id)
            assert stored.status == "running" and stored.attempts == 1 and stored.started_at is not None
        finally:
            await studio.forge.cancel(ALICE, lora_id)
            ended = await asyncio.wait_for(follow, 60)
        assert ended.status == "cancelled"
