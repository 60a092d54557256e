"""The queue ETA (studio.eta): the estimator, its inputs read from real store rows (a SQLite file)
and real worker advertisements in Redis, and how the bot words it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.render import eta_words, place_in_line
from studio import jobs
from studio.eta import RECENT_RUNS, RUNS_REFRESH_S, QueueEta, estimate, shared, typical_run
from studio.recipe import Recipe
from studio.routing import Advertisement, Routing, advert_key
from studio.store import Store
from tests.integration.workers import TEST_REDIS_URL

RECIPE = Recipe(
    model="m", family="sd15", prompt="a lantern", seed=1, steps=2, guidance=5.0, width=64, height=64
)


def test_the_estimate_is_the_jobs_ahead_over_the_slots_plus_its_own_run() -> None:
    assert estimate(0, 10.0, 1) == 10.0  # next in line: its own run
    assert estimate(3, 10.0, 1) == 40.0  # three runs ahead, then its own
    assert estimate(4, 10.0, 2) == 30.0  # two workers drain the four ahead in two rounds
    assert estimate(None, 10.0, 1) is None  # not queued
    assert estimate(2, None, 1) is None  # no finished generation yet
    assert estimate(2, 10.0, 0) is None  # no live worker


def test_the_typical_run_is_the_median_so_one_cold_load_does_not_swing_it() -> None:
    assert typical_run([2.0, 2.2, 1.8, 60.0]) == pytest.approx(2.1)
    assert typical_run([]) is None


def test_the_bot_words_it_roughly_and_says_nothing_without_one() -> None:
    assert eta_words(None) == ""
    assert eta_words(0.4) == " · ready in about 5 s"
    assert eta_words(41) == " · ready in about 45 s"
    assert eta_words(150) == " · ready in about 2 min"  # rounded half to even: 2.5 -> 2
    assert eta_words(5400) == " · ready in about 1.5 h"
    assert place_in_line("queued", 2, 150) == " · 2 jobs ahead · ready in about 2 min"
    assert place_in_line("queued", 0, None) == " · next in line"
    assert place_in_line("running", None, 150) == ""


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "studio.db") as opened:
        yield opened


@pytest.fixture
async def routing() -> AsyncIterator[Routing]:
    """A queue of its own in the test Redis, where the test advertises workers as workers do."""
    redis = Redis.from_url(TEST_REDIS_URL)
    queue_name = f"t{uuid.uuid4().hex[:10]}:{jobs.INFERENCE}"
    try:
        yield Routing(redis, queue_name)
    finally:
        keys = [key async for key in redis.scan_iter(match=advert_key(queue_name, "*"))]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def advertise(routing: Routing, worker_id: str, slots: int) -> None:
    advert = Advertisement(
        worker_id=worker_id,
        device="cpu",
        dtype="float32",
        budget_bytes=10**9,
        total_bytes=10**9,
        free_bytes=10**9,
        warm=[],
        needs={},
        running=0,
        slots=slots,
        at=time.time(),
    )
    key = advert_key(routing.queue_name, worker_id)
    await routing.redis.set(key, jobs.serialize(advert.model_dump()), px=60_000)


async def finished(store: Store, project_id: str, worker_seconds: float, load_seconds: float = 0.0) -> None:
    generation_id = uuid.uuid4().hex
    await store.add_generation(generation_id, project_id, "cli:ada", RECIPE)
    await store.finish_generation(generation_id, [], None, worker_seconds, 1, load_seconds)


async def test_the_estimate_from_store_rows_and_advertised_slots(store: Store, routing: Routing) -> None:
    now = [1000.0]
    eta = QueueEta(store, routing, clock=lambda: now[0])
    assert await eta.seconds(2) is None  # no worker, no finished generation: nothing to say

    await advertise(routing, "w1", slots=1)
    assert await eta.seconds(2) is None  # a worker, but nothing has finished yet

    await store.ensure_user("cli:ada", "ada")
    project = await store.create_project("cli:ada", "eta")
    for seconds in (4.0, 6.0, 5.0):
        await finished(store, project.id, seconds)
    await finished(store, project.id, 3.0, load_seconds=40.0)  # a cold load: 43 s, an outlier
    failed, queued = uuid.uuid4().hex, uuid.uuid4().hex
    for generation_id in (failed, queued):
        await store.add_generation(generation_id, project.id, "cli:ada", RECIPE)
    await store.end_generation(failed, "failed", "boom")  # neither counts: no run time

    assert sorted(await store.recent_run_seconds(RECENT_RUNS)) == [4.0, 5.0, 6.0, 43.0]
    assert await eta.typical_run() == 5.5  # "none yet" was not kept: the first runs count at once
    assert await eta.seconds(0) == 5.5
    assert await eta.seconds(3) == 22.0  # 3 ahead on 1 slot, then its own run

    await advertise(routing, "w2", slots=2)
    assert await eta.seconds(3) == 22.0  # the capacity read a moment ago is reused...
    now[0] += RUNS_REFRESH_S
    assert await eta.seconds(3) == pytest.approx((3 / 3 + 1) * 5.5)  # ...then 3 slots in all

    for _ in range(RECENT_RUNS):  # only the latest RECENT_RUNS count: the old ones age out
        await finished(store, project.id, 2.0)
    now[0] += RUNS_REFRESH_S
    assert await eta.typical_run() == 2.0
    assert shared(store, routing) is shared(store, routing)  # one cache per store in a process
