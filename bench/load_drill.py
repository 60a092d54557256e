"""Load drill: many people share a few inference workers while one of them fires a 100-job batch.

Real Redis and real `atelier worker` processes on the tiny demo model. One person (an API key's
owner) enqueues a batch all at once; then the other people — spread over three servers — each
send one generation, at evenly spaced moments chosen so that they alone would keep the workers
about ``--load`` (0.5) busy. The same drill runs twice on the same warm workers: first in FIFO order
(``fair_scheduling = false``), then with fair scheduling (studio/fairness.py).

Reported per mode, from arq's own timestamps (enqueued -> a worker started it):
- the wait of the one-job people (p50/p99) and of the batch's jobs;
- Jain's fairness index over people, of each person's normalised throughput: the time their own
  jobs ran, spread over the workers (max(longest run, sum of runs / workers)), over the time from
  their first enqueue to their last result (1.0 each: no one was held up by anyone). Also shown
  over the slowdowns (the inverse), which rates FIFO kinder: there everyone waits alike, long;
- jobs lost (no successful result) and jobs run twice (arq tries > 1): both must be 0.

    .venv/bin/python -m bench.load_drill                          # 300 people, 100-job batch, 4 workers
    .venv/bin/python -m bench.load_drill --quick                  # 60 people, 40-job batch: ~3 min on 2 cores
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/load_drill.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import math
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench._figures import load_line, machine_info, parser, table, worker_overrides, write_json
from bench._harness import Lab, Lane, entry, wait_ready
from studio import jobs
from studio.catalogue import load_catalogue
from studio.fairness import jain_index
from studio.generations import recipe_for
from studio.queue import JobQueue
from studio.styles import load_styles

SERVERS = 3
PROMPT = "a lantern in the fog --steps 6 --size 128x128 --seed {n}"  # ~0.5 s a job on a CPU core
END_TIMEOUT_S = 1800.0


@dataclass
class Job:
    job_id: str
    person: str
    server: int
    enqueued: float = 0.0  # epoch seconds (arq's record)
    started: float = 0.0
    finished: float = 0.0
    tries: int = 0
    done: bool = False

    @property
    def wait(self) -> float:
        return self.started - self.enqueued


@dataclass
class Outcome:
    mode: str
    jobs: list[Job] = field(default_factory=list)
    seconds: float = 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Drill:
    def __init__(self, lane: Lane, people: int, batch: int, workers: int, load: float) -> None:
        self.lane = lane
        self.people = people
        self.batch = batch
        self.workers = workers
        self.load = load
        catalogue = load_catalogue(lane.settings.models_file)
        styles = load_styles(lane.settings.styles_file)
        self.catalogue = catalogue
        self.styles = styles
        self.model = catalogue.get(self.recipe(0)["model"]).ref()

    def recipe(self, n: int) -> dict[str, Any]:
        return recipe_for(self.catalogue, self.styles, PROMPT.format(n=n)).model_dump(mode="json")

    def payload(self, job_id: str, n: int) -> dict[str, Any]:
        return jobs.GenerateJob(generation_id=job_id, recipe=self.recipe(n), model=self.model).model_dump()

    async def service_time(self, queue: JobQueue) -> float:
        """Warm every worker (its first job loads the model), then the median run time of one job
        while all of them are busy: what the drill's arrivals are paced by."""
        for round_ in ("load", "measure"):
            warm = [f"warm-{round_}-{uuid.uuid4().hex}" for _ in range(self.workers * 3)]
            for n, job_id in enumerate(warm):
                await queue.enqueue(jobs.GENERATE, job_id, self.payload(job_id, n), person=job_id)
            records = [await self.finished(queue, job_id) for job_id in warm]
            if not all(r.done for r in records):
                raise RuntimeError(f"warm-up jobs failed; worker logs in {self.lane.logs}")
        return statistics.median(r.finished - r.started for r in records)

    async def finished(self, queue: JobQueue, job_id: str) -> Job:
        await queue.wait(job_id, timeout=END_TIMEOUT_S)
        return await self.record(queue, Job(job_id, "", 0))

    @staticmethod
    async def record(queue: JobQueue, job: Job) -> Job:
        raw = await queue.redis.get(jobs.ARQ_RESULT_PREFIX + job.job_id)
        if raw is not None:
            data = jobs.deserialize(raw)
            job.enqueued, job.started, job.finished = data["et"] / 1000, data["st"] / 1000, data["ft"] / 1000
            job.tries = int(data["t"])
            job.done = bool(data["s"]) and isinstance(data["r"], dict) and data["r"].get("status") == "done"
        return job

    async def run(self, queue: JobQueue, mode: str, service: float) -> Outcome:
        outcome = Outcome(mode)
        capacity = self.workers / service  # jobs per second
        spacing = 1 / (self.load * capacity)
        tag = uuid.uuid4().hex[:6]
        begun = time.monotonic()
        batch_owner = "discord:batch-owner"  # its API key's jobs: the owner's turn
        for n in range(self.batch):
            job = Job(f"{mode}-{tag}-batch-{n}", batch_owner, 0)
            await queue.enqueue(jobs.GENERATE, job.job_id, self.payload(job.job_id, n), person=job.person)
            outcome.jobs.append(job)
        for n in range(self.people):
            await asyncio.sleep(max(0.0, begun + n * spacing - time.monotonic()))
            server = n % SERVERS
            job = Job(f"{mode}-{tag}-p{n}", f"discord:{server}:{n}", server)
            await queue.enqueue(jobs.GENERATE, job.job_id, self.payload(job.job_id, n), person=job.person)
            outcome.jobs.append(job)
        queue_name = queue.settings.queue_name(jobs.INFERENCE)
        deadline = time.monotonic() + END_TIMEOUT_S
        while time.monotonic() < deadline:  # a benchmark may poll: arq removes a job once done
            if not await queue.redis.zcard(queue_name):
                break
            await asyncio.sleep(0.5)
        outcome.seconds = time.monotonic() - begun
        for job in outcome.jobs:
            await self.record(queue, job)
        return outcome


def figures(outcome: Outcome, workers: int) -> dict[str, Any]:
    singles = [j for j in outcome.jobs if j.person != "discord:batch-owner" and j.done]
    batch = [j for j in outcome.jobs if j.person == "discord:batch-owner" and j.done]
    by_person: dict[str, list[Job]] = {}
    for job in outcome.jobs:
        if job.done:
            by_person.setdefault(job.person, []).append(job)

    # Each person's slowdown: the time from their first enqueue to their last result over the time
    # their own jobs ran, spread over the workers (their run times as measured, so that how fast a
    # busy machine happened to run a job is not counted as unfairness; only waiting is).
    def alone(js: list[Job]) -> float:
        runs = [j.finished - j.started for j in js]
        return max(max(runs), sum(runs) / workers)

    slowdowns = [
        (max(j.finished for j in js) - min(j.enqueued for j in js)) / alone(js) for js in by_person.values()
    ]
    waits = [j.wait for j in singles]
    per_server = {s: percentile([j.wait for j in singles if j.server == s], 0.99) for s in range(SERVERS)}
    return {
        "mode": outcome.mode,
        "jobs": len(outcome.jobs),
        "single_p50_s": percentile(waits, 0.5),
        "single_p99_s": percentile(waits, 0.99),
        "single_p99_by_server_s": per_server,
        "batch_p50_s": percentile([j.wait for j in batch], 0.5) if batch else None,
        "batch_last_s": max(j.finished for j in batch) - min(j.enqueued for j in batch) if batch else None,
        "jain": jain_index([1 / x for x in slowdowns]),  # normalised throughputs (Jain's own form)
        "jain_slowdown": jain_index(slowdowns),  # the same over slowdowns: kinder to FIFO
        "slowdown_p50": percentile(slowdowns, 0.5),
        "slowdown_max": max(slowdowns),
        "lost": sum(1 for j in outcome.jobs if not j.done),
        "run_twice": sum(1 for j in outcome.jobs if j.tries > 1),
        "seconds": outcome.seconds,
        "run_p50_s": percentile([j.finished - j.started for j in outcome.jobs if j.done], 0.5),
    }


async def drill(args: Any) -> dict[str, Any]:
    with Lab("load-drill", args.redis_url, keep=args.keep) as lab:
        lane = lab.lane("drill", **worker_overrides(args), result_ttl_s=3600)
        workers = [lane.start("inference") for _ in range(args.workers)]
        queue = await JobQueue.connect(lane.settings)
        fifo = await JobQueue.connect(lane.settings.model_copy(update={"fair_scheduling": False}))
        try:
            await wait_ready(queue, workers)
            run = Drill(lane, args.people, args.batch, args.workers, args.load)
            service = await run.service_time(queue)
            print(f"one job runs {service:.2f}s on a worker; {args.workers} workers", flush=True)
            results = []
            for mode, client in (("fifo", fifo), ("fair", queue)):
                outcome = await run.run(client, mode, service)
                results.append(figures(outcome, args.workers))
                ran = results[-1]["run_p50_s"]
                print(f"{mode}: done in {outcome.seconds:.0f}s, a job ran {ran:.2f}s (median)", flush=True)
        finally:
            await fifo.close()
            await queue.close()
    return {"service_s": service, "results": results}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0], default_runs=1)
    p.add_argument("--people", type=int, default=300, help="people who send one job each (default 300)")
    p.add_argument("--batch", type=int, default=100, help="jobs in the one API batch (default 100)")
    p.add_argument("--workers", type=int, default=4, help="inference workers (default 4)")
    p.add_argument(
        "--load", type=float, default=0.5, help="the one-job people's share of capacity (default 0.5)"
    )
    p.add_argument("--quick", action="store_true", help="60 people and a 40-job batch")
    args = p.parse_args(argv)
    if args.quick:
        args.people, args.batch = 60, 40
    if not (0 < args.load < 1):
        p.error("--load must be between 0 and 1")
    print(machine_info(args))
    print(f"{args.people} people on {SERVERS} servers, one batch of {args.batch}, {args.workers} workers")
    found = asyncio.run(drill(args))
    write_json(args.json, found)
    rows = []
    for r in found["results"]:
        rows.append(
            [
                r["mode"],
                f"{r['single_p50_s']:.1f}",
                f"{r['single_p99_s']:.1f}",
                f"{r['batch_p50_s']:.1f}",
                f"{r['batch_last_s']:.0f}",
                f"{r['jain']:.3f}",
                f"{r['jain_slowdown']:.3f}",
                str(r["lost"]),
                str(r["run_twice"]),
            ]
        )
    print(
        table(
            [
                "mode",
                "1-job p50 s",
                "1-job p99 s",
                "batch p50 s",
                "batch done s",
                "Jain",
                "Jain (slowdown)",
                "lost",
                "run twice",
            ],
            rows,
        )
    )
    fifo, fair = found["results"]
    ratio = fifo["single_p99_s"] / max(fair["single_p99_s"], 1e-9)
    print(
        f"one-job people's p99 wait: FIFO / fair = {ratio:.1f}x (target >= 5); fair Jain {fair['jain']:.3f}"
    )
    print(load_line())
    return 0 if fair["lost"] == fifo["lost"] == 0 and fair["run_twice"] == fifo["run_twice"] == 0 else 1


if __name__ == "__main__":
    entry(main)
