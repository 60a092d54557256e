"""Model-aware routing through real Redis and two real inference workers on the tiny models.

Runs in file order: the workers stop in the last test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from gpu_worker.advertise import model_bytes
from studio import jobs
from studio.app import Studio, open_studio
from studio.catalogue import load_catalogue
from studio.entities import Requester
from studio.routing import Advertisement, NoWorkerCanRun, Routing
from tests.integration.workers import Deployment

ALICE = Requester(id="cli:alice", name="alice")
FP32 = 4  # CPU workers run fp32


def _need(models_file: Path, model_id: str) -> int:
    need = model_bytes(load_catalogue(models_file).get(model_id).ref(), FP32)
    assert need is not None
    return need


@pytest.fixture(scope="module")
def two_workers(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two inference workers whose budget holds tiny-sd15 and not tiny-sdxl, and a post worker."""
    small, big = _need(tiny_catalogue, "tiny-sd15"), _need(tiny_catalogue, "tiny-sdxl")
    assert small < big
    dep = Deployment(
        data_dir=tmp_path_factory.mktemp("routing"),
        models_file=tiny_catalogue,
        extra_env={
            "ATELIER_WORKER_MEMORY_GB": str((small + big) / 2 / 1e9),
            "ATELIER_ADVERTISE_INTERVAL_S": "0.5",
            "ATELIER_WARM_PREFERENCE_S": "10",  # longer than any wait here: only idleness decides
        },
    )
    dep.start_worker("inference")
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def studio(two_workers: Deployment) -> AsyncIterator[Studio]:
    await two_workers.wait_ready(minimum=1)
    await two_workers.wait_ready(("inference",), minimum=2)
    async with open_studio(two_workers.settings()) as studio:
        yield studio


def _routing(studio: Studio) -> Routing:
    return Routing(studio.queue.redis, studio.settings.queue_name(jobs.INFERENCE))


async def _until(
    look: Callable[[], Awaitable[list[Advertisement]]], ok: Callable[[list[Advertisement]], bool], what: str
) -> list[Advertisement]:
    """The advertisements once ``ok`` holds (read as they change; the heartbeat is 0.5 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = await look()
        if ok(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: advertisements are {found}")


async def test_each_worker_advertises_its_device_budget_and_what_fits(
    studio: Studio, two_workers: Deployment
) -> None:
    adverts = await _until(_routing(studio).adverts, lambda found: len(found) == 2, "two workers")
    budget = int(studio.settings.worker_memory_gb * 1e9)
    for advert in adverts:
        assert (advert.device, advert.dtype, advert.budget_bytes, advert.slots) == (
            "cpu",
            "float32",
            budget,
            1,
        )
        assert 0 <= advert.free_bytes <= advert.total_bytes  # on CPU: the budget less the RSS (here 0)
        assert advert.needs["tiny-sd15"] == _need(two_workers.models_file, "tiny-sd15")
        assert advert.can_hold("tiny-sd15") and not advert.can_hold("tiny-sdxl")


async def test_a_model_too_big_for_every_worker_is_refused_and_nothing_is_queued(studio: Studio) -> None:
    need = _need(studio.settings.models_file, "tiny-sdxl")
    with pytest.raises(NoWorkerCanRun) as refused:
        await studio.generations.imagine(ALICE, "a castle --model tiny-sdxl --batch 1")
    assert str(refused.value).startswith(
        f"No worker here can run `tiny-sdxl` (it needs about {need / 1e6:.1f} MB;"
    )
    assert await studio.queue.depth(jobs.INFERENCE) == 0
    assert await studio.store.count_in_flight(ALICE.id) == 0


async def test_jobs_on_a_warm_model_go_to_the_worker_that_holds_it(studio: Studio) -> None:
    routing = _routing(studio)
    first = await studio.generations.imagine(ALICE, "a red boat --model tiny-sd15 --batch 1")
    assert (await studio.results.follow(first.id)).generation.status == "done"

    def one_warm_and_idle(found: list[Advertisement]) -> bool:
        return sorted(len(a.warm) for a in found) == [0, 1] and all(a.idle for a in found)

    before = await _until(routing.adverts, one_warm_and_idle, "one worker warm on tiny-sd15")
    warm = next(a.worker_id for a in before if a.warm == ["tiny-sd15"])
    loads = []
    for n in range(4):  # one after another: the warm worker is idle each time
        generation = await studio.generations.imagine(ALICE, f"a red boat {n} --model tiny-sd15 --batch 1")
        finished = await studio.results.follow(generation.id)
        assert finished.generation.status == "done"
        loads.append(finished.generation.load_seconds)
    assert loads == [0.0] * 4  # never loaded again: the cold worker left every job to the warm one
    after = await _until(routing.adverts, one_warm_and_idle, "still one warm worker")
    assert [a.worker_id for a in after if a.warm] == [warm]


async def test_advertisements_go_when_workers_stop(studio: Studio, two_workers: Deployment) -> None:
    routing = _routing(studio)
    killed, stopped = two_workers.processes[0], two_workers.processes[1]
    os.kill(killed.pid, signal.SIGKILL)  # no goodbye: its advertisement expires (3 heartbeats)
    killed.wait()
    started = time.monotonic()
    await _until(routing.adverts, lambda found: len(found) == 1, "the killed worker's advertisement expired")
    assert time.monotonic() - started < 0.5 * 3 + 5  # its time to live, and slack for a loaded machine
    stopped.send_signal(signal.SIGTERM)  # a clean stop withdraws it at once
    await asyncio.to_thread(stopped.wait, 30)
    assert await routing.adverts() == []
    # With no worker at all a job waits for one, as before: nothing refuses it.
    generation = await studio.generations.imagine(ALICE, "a quiet sea --model tiny-sdxl --batch 1")
    assert await studio.queue.depth(jobs.INFERENCE) == 1
    await studio.generations.cancel(ALICE, generation.id)
