"""Fair scheduling through real Redis and a real worker: a batch does not hold up someone else.

No worker runs while the jobs are queued, so the order they wait in is fixed before the worker
starts; arq then records when it started each one.
"""

from __future__ import annotations

from studio import fairness, jobs
from studio.app import Studio, open_studio
from studio.defaults import Defaults
from studio.entities import Generation, Requester
from tests.integration.workers import Deployment

BATCHER = Requester("discord:100", "batcher", server="g1")  # an API key's batch: its owner's id
SINGLE = Requester("discord:200", "single", server="g1")
RELAXED = Requester("discord:300", "relaxed", server="g1")
QUICK = " --steps 2 --seed 3"


async def _batch(studio: Studio, count: int) -> list[Generation]:
    plan = await studio.generations.prepare_batch(
        BATCHER,
        [f"batch {i}{QUICK}" for i in range(count)],
        None,
        private=False,
        project="default",
        thread_id=None,
        limit=count + 1,
    )
    return await studio.generations.start_batch(plan)


async def _started_at(studio: Studio, generation_id: str) -> float:
    success, _ = await studio.queue.wait(generation_id, timeout=240)
    assert success
    raw = await studio.queue.redis.get(jobs.ARQ_RESULT_PREFIX + generation_id)
    return float(jobs.deserialize(raw)["st"])


async def test_a_batch_of_twenty_delays_another_person_by_one_job(idle: Deployment) -> None:
    try:
        async with open_studio(idle.settings()) as studio:
            await studio.preferences.change(RELAXED, Defaults(lane="relax"))
            relaxed = await studio.generations.imagine(RELAXED, f"relaxed{QUICK}")
            batch = await _batch(studio, 20)
            single = await studio.generations.imagine(SINGLE, f"single{QUICK}")

            # The order they wait in, as /status and the queued message say it.
            assert await studio.queue.position(jobs.INFERENCE, single.id) == 1
            assert await studio.queue.position(jobs.INFERENCE, relaxed.id) == 21  # after every fast job
            queue_name = idle.settings().queue_name(jobs.INFERENCE)
            scores = dict(await studio.queue.redis.zrange(queue_name, 0, -1, withscores=True))
            assert fairness.lane_of_score(scores[relaxed.id.encode()]) == "relax"

            # The Lua script and the Python rule agree on every score, each job at its cost.
            model = fairness.LaneState()
            for generation in batch:
                model.assign(generation.id, BATCHER.id, studio.generations.cost_of(generation.recipe))
            model.assign(single.id, SINGLE.id, studio.generations.cost_of(single.recipe))
            low = fairness.lane_range("fast")[0]
            fast_scores = {k.decode(): int(v) - low for k, v in scores.items() if k != relaxed.id.encode()}
            assert fast_scores == model.queued

            idle.start_worker("inference")
            idle.start_worker("post")
            started = {g.id: await _started_at(studio, g.id) for g in [*batch, single, relaxed]}
        order = sorted(started, key=lambda job_id: started[job_id])
        assert order.index(single.id) <= 2, order  # behind one (at most two) of the batch's jobs
        assert order[-1] == relaxed.id  # relax ran once no fast job was left
    finally:
        idle.stop()
