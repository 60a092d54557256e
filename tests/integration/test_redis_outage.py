"""Redis SIGKILLed and restarted from its AOF: workers live on, and no job is lost or recorded twice.

The workers are real `atelier worker` processes and Redis is a private redis-server, so that
killing it disturbs nobody else. Every wait is for an event (a log line, a condition), with a
deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from studio import jobs
from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.queue import JobQueue
from tests.integration.own_redis import OwnRedis, OwnRedisDeployment
from tests.integration.workers import ROOT, Deployment

LEASE_S = 2.0  # the shortest lease: it lapses while Redis is down, as in a long outage
BOB = Requester("cli:bob", "bob")


@pytest.fixture
def outage_deployment(
    tiny_catalogue: Path, tmp_path: Path, own_redis: OwnRedis
) -> Iterator[OwnRedisDeployment]:
    dep = OwnRedisDeployment(
        data_dir=tmp_path / "studio",
        models_file=tiny_catalogue,
        extra_env={"ATELIER_JOB_LEASE_S": str(LEASE_S)},
        redis_url=own_redis.url,
    )
    dep.data_dir.mkdir()
    yield dep
    dep.stop()


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def until_live(queue: JobQueue, wanted: dict[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        live = await queue.live_workers()
        if all(live[kind] >= count for kind, count in wanted.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"workers not back: {live}, wanted {wanted}")
        await asyncio.sleep(0.1)


def worker_logs(dep: Deployment) -> list[str]:
    return [p.read_text(errors="replace") for p in sorted(dep.data_dir.glob("worker-*.log"))]


@pytest.fixture
async def studio(outage_deployment: OwnRedisDeployment) -> AsyncIterator[Studio]:
    async with open_studio(outage_deployment.settings()) as studio:
        yield studio


async def test_workers_and_a_running_generation_ride_out_redis_kills(
    outage_deployment: OwnRedisDeployment, own_redis: OwnRedis, studio: Studio
) -> None:
    dep = outage_deployment
    workers = [dep.start_worker("inference"), dep.start_worker("inference"), dep.start_worker("post")]
    wanted = {jobs.INFERENCE: 2, jobs.POST: 1}
    await dep.wait_ready(kinds=(jobs.INFERENCE, jobs.POST), minimum=1)
    await until_live(studio.queue, wanted, 90)

    # 1. Killed while every worker is idle: each notices, waits, and is back once Redis is. A
    #    worker started during the outage (a host reboot) waits for Redis instead of exiting.
    own_redis.kill()
    workers.append(dep.start_worker("post"))
    wanted[jobs.POST] = 2
    await until(
        lambda: all("Redis is unreachable" in text for text in worker_logs(dep)), 60, "every worker to notice"
    )
    own_redis.start()
    await until_live(studio.queue, wanted, 60)
    assert all(w.poll() is None for w in workers), dep.logs()

    # 2. Killed while a generation runs; it ends while Redis is down, its lease lapses, and
    #    Redis comes back from its AOF: the result is kept, stored, and recorded exactly once.
    generation = await studio.generations.imagine(
        BOB, "a stormy sea --steps 30 --size 256x256 --batch 2 --seed 9"
    )
    stepping = asyncio.Event()

    async def on_progress(event: jobs.ProgressEvent) -> None:
        if event.type == "step" and event.step >= 2:
            stepping.set()

    follow = asyncio.create_task(studio.results.follow(generation.id, on_progress))
    await asyncio.wait_for(stepping.wait(), 120)
    own_redis.kill()
    held = f"job {generation.id} ended while Redis is away"
    await until(
        lambda: any(held in text for text in worker_logs(dep)), 180, "the job to end during the outage"
    )
    assert not follow.done()
    back_at = time.monotonic()
    own_redis.start()
    finished = await asyncio.wait_for(follow, 120)
    print(f"\nRedis back → generation recorded in {time.monotonic() - back_at:.2f}s")

    assert finished.generation.status == "done", finished.generation.error
    assert [image.index for image in finished.images] == [0, 1]
    rows = await studio.store._all(
        "SELECT COUNT(*) AS n FROM images WHERE generation_id = ?", (generation.id,)
    )
    assert rows[0]["n"] == 2
    await until(
        lambda: any(f"job {generation.id}: result stored after the outage" in t for t in worker_logs(dep)),
        30,
        "the held result to be stored",
    )

    # 3. Every worker process is alive, reports in, and takes new work (grids need the post one).
    assert all(w.poll() is None for w in workers), dep.logs()
    await until_live(studio.queue, wanted, 60)
    again = await studio.generations.imagine(BOB, "a calm sea --batch 2 --seed 3")
    after = await asyncio.wait_for(studio.results.follow(again.id), 120)
    assert after.generation.status == "done" and after.generation.grid_artifact is not None
    assert all(w.poll() is None for w in workers), dep.logs()

    # 4. `atelier imagine` waiting while Redis is killed and restarted: it carries on and ends well.
    #    Long enough to be killed mid-run: 30 steps at 256x256 took 1.9 s on an idle machine.
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "imagine", "a harbour --steps 120 --size 256x256 --seed 5",
        "--out", str(dep.data_dir / "out"),
        env=dep.env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert cli.stderr is not None and cli.stdout is not None
    said: list[str] = []
    while not any(line.startswith("running") for line in said):
        line = await asyncio.wait_for(cli.stderr.readline(), 120)
        assert line, "\n".join(said)
        said.append(line.decode().strip())
    own_redis.kill()
    while not any("Redis is unreachable" in line for line in said):  # the CLI noticed (one line)
        line = await asyncio.wait_for(cli.stderr.readline(), 60)
        assert line, "\n".join(said)
        said.append(line.decode().strip())
    own_redis.start()
    out, err = await asyncio.wait_for(cli.communicate(), 180)
    text = "\n".join(said) + err.decode()
    assert cli.returncode == 0, text
    assert "Traceback" not in text and out.decode().strip().endswith(".png"), text
    assert all(w.poll() is None for w in workers), dep.logs()


async def test_a_malformed_progress_message_is_ignored(idle: Deployment) -> None:
    queue = await JobQueue.connect(idle.settings())
    try:
        job_id = f"malformed-{time.monotonic_ns()}"
        await queue.enqueue(jobs.GENERATE, job_id, {})  # no worker: it stays queued
        seen: list[jobs.ProgressEvent] = []

        async def on_progress(event: jobs.ProgressEvent) -> None:
            seen.append(event)

        waiting = asyncio.create_task(queue.wait(job_id, on_progress, timeout=30))
        channel = jobs.progress_channel(queue.prefix, job_id)
        good = jobs.serialize(jobs.ProgressEvent(type="step", step=1, total=4).model_dump())
        for junk in (b"\xc1 not msgpack", jobs.serialize({"type": "nonsense"}), good):
            # Each once somebody listens: publish returns how many subscribers got it.
            deadline = time.monotonic() + 10
            while not await queue.redis.publish(channel, junk):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        await until(lambda: len(seen) == 1, 10, "the good event")
        assert not waiting.done()  # the junk neither ended nor broke the wait
        assert seen[0].type == "step" and seen[0].step == 1
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
    finally:
        await queue.redis.delete(jobs.ARQ_JOB_PREFIX + job_id)
        await queue.close()
