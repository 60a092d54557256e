"""A worker killed with SIGKILL mid-job: the job is retried and completes once, with one set of images."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio import jobs
from studio.app import open_studio
from studio.entities import Requester
from tests.integration.workers import Deployment

LEASE_S = 3.0


@pytest.fixture
def crashy(tiny_catalogue: Path, tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(
        data_dir=tmp_path, models_file=tiny_catalogue, extra_env={"ATELIER_JOB_LEASE_S": str(LEASE_S)}
    )
    yield dep
    dep.stop()


async def test_sigkilled_worker_job_is_retried_and_recorded_once(crashy: Deployment) -> None:
    victim = crashy.start_worker("inference")
    crashy.start_worker("post")
    await crashy.wait_ready()
    events: list[tuple[float, jobs.ProgressEvent]] = []
    stepping = asyncio.Event()

    async def on_progress(event: jobs.ProgressEvent) -> None:
        events.append((time.monotonic(), event))
        if event.type == "step" and event.step >= 2:
            stepping.set()

    async with open_studio(crashy.settings()) as studio:
        generation = await studio.generations.imagine(
            Requester("cli:bob", "bob"), "a stormy sea --steps 40 --size 256x256 --batch 2 --seed 9"
        )
        follow = asyncio.create_task(studio.results.follow(generation.id, on_progress))
        await asyncio.wait_for(stepping.wait(), 90)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait()
        crashy.start_worker("inference")  # "once a worker runs again"
        finished = await asyncio.wait_for(follow, 180)

        restarted_at = next(t for t, e in events if e.type == "started" and e.attempt == 2)
        recovery = restarted_at - killed_at
        done_after = time.monotonic() - killed_at
        print(f"\nrecovery after SIGKILL: {recovery:.2f}s to restart, {done_after:.2f}s to done")
        assert recovery < LEASE_S + 30  # lease + worker start-up (imports) + poll
        assert finished.generation.status == "done"
        assert finished.generation.attempts == 2
        images = await studio.store.images_of(generation.id)
        assert [i.index for i in images] == [0, 1]
        rows = await studio.store._all(
            "SELECT COUNT(*) AS n FROM images WHERE generation_id = ?", (generation.id,)
        )
        assert rows[0]["n"] == 2


async def test_without_a_post_worker_a_batch_is_recorded_without_its_grid(
    tiny_catalogue: Path, tmp_path: Path
) -> None:
    dep = Deployment(data_dir=tmp_path, models_file=tiny_catalogue, extra_env={"ATELIER_GRID_TIMEOUT_S": "1"})
    try:
        dep.start_worker("inference")
        await dep.wait_ready(kinds=("inference",))
        async with open_studio(dep.settings()) as studio:
            generation = await studio.generations.imagine(Requester("cli:bob", "bob"), "two boats --batch 2")
            finished = await asyncio.wait_for(studio.results.follow(generation.id), 60)
        assert finished.generation.status == "done" and finished.generation.grid_artifact is None
        assert len(finished.images) == 2
    finally:
        dep.stop()
