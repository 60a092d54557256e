"""Recovery after a worker is SIGKILLed in the middle of a job, with the default job lease.

Two inference workers run; a long job starts on one of them (the busy one is found by its CPU
use) and that worker is killed with SIGKILL after two steps. Measured, per run:

* kill -> the job started again on the standby worker (attempt 2): arq retries a job only once
  its in-progress key lapses, which our lease (``job_lease_s``, default 15 s, refreshed every
  third of it) bounds, instead of arq's "largest timeout + 10 s" (here 900 + 10 s);
* kill -> the generation recorded as done, with exactly one set of images.

A replacement worker started after the kill is ready in its start-up time (reported too), well
inside the lease, so with one worker per machine recovery is about the same.

    .venv/bin/python -m bench.crash_recovery --runs 3
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/crash_recovery.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import signal
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench._figures import (
    STATS_HEADERS,
    check_runs,
    load_line,
    machine_info,
    parser,
    summarize,
    table,
    worker_overrides,
    write_json,
)
from bench._harness import Lab, Lane, Worker, cpu_seconds, entry, wait_ready
from studio import jobs
from studio.app import open_studio
from studio.entities import Requester

ME = Requester(id="bench:crash", name="bench")
PROMPT = "a stormy sea --steps 150 --size 256x256 --seed 9"


@dataclass(frozen=True)
class Sample:
    restarted_after: float
    done_after: float
    attempts: int
    images: int
    replacement_ready_after: float


async def busiest(workers: list[Worker]) -> Worker:
    before = {w.pid: cpu_seconds(w.pid) or 0.0 for w in workers}
    await asyncio.sleep(0.5)
    return max(workers, key=lambda w: (cpu_seconds(w.pid) or 0.0) - before[w.pid])


async def one_run(lane: Lane, lease: float) -> Sample:
    async with open_studio(lane.settings) as studio:
        inference = [w for w in lane.workers if w.kind == "inference"]
        await wait_ready(studio.queue, lane.workers)
        events: list[tuple[float, jobs.ProgressEvent]] = []
        stepping = asyncio.Event()

        async def on_progress(event: jobs.ProgressEvent) -> None:
            events.append((time.perf_counter(), event))
            if event.type == "step" and event.step >= 2:
                stepping.set()

        generation = await studio.generations.imagine(ME, PROMPT)
        follow = asyncio.create_task(studio.results.follow(generation.id, on_progress))
        await asyncio.wait_for(stepping.wait(), 120)
        victim = await busiest(inference)
        victim.process.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        victim.process.wait()
        lane.workers.remove(victim)
        replacement = lane.start("inference")  # the next standby, for the next run
        finished = await asyncio.wait_for(follow, lease * 2 + 300)
        await wait_ready(studio.queue, [replacement])
        restarted = next(t for t, e in events if e.type == "started" and e.attempt == 2)
        images = await studio.store.images_of(generation.id)
        return Sample(
            restarted_after=restarted - killed,
            done_after=time.perf_counter() - killed,
            attempts=finished.generation.attempts,
            images=len(images),
            replacement_ready_after=replacement.ready_after or 0.0,
        )


def main(argv: list[str] | None = None) -> int:
    p = parser("Recovery after a SIGKILLed worker, with the default job lease.", default_runs=3)
    args = p.parse_args(argv)
    check_runs(p, args.runs)
    print(machine_info(args))
    samples = []
    with Lab("crash-recovery", args.redis_url, args.keep) as lab:
        lane = lab.lane("crash", **worker_overrides(args))
        lease = lane.settings.job_lease_s
        for kind in ("inference", "inference", "post"):
            lane.start(kind)
        for i in range(args.runs):
            samples.append(asyncio.run(one_run(lane, lease)))
            print(f"  run {i + 1}/{args.runs}", file=sys.stderr, end="\r")
        print(file=sys.stderr)
    print(f"\nSIGKILL mid-job, job lease {lease:g} s, {args.runs} runs (seconds)\n")
    rows = [
        summarize([s.restarted_after for s in samples]).row("kill -> job started again", 1.0, 2),
        summarize([s.done_after for s in samples]).row("kill -> generation done", 1.0, 2),
        summarize([s.replacement_ready_after for s in samples]).row("replacement worker start-up", 1.0, 2),
    ]
    print(table(STATS_HEADERS, rows))
    ok = all(s.attempts == 2 and s.images == 1 for s in samples)
    print(f"\nevery run: attempt 2 finished it and exactly one image was recorded: {'yes' if ok else 'NO'}")
    result: dict[str, Any] = {"lease_s": lease, "samples": [asdict(s) for s in samples]}
    write_json(args.json, result)
    print(load_line())
    return 0 if ok else 1


if __name__ == "__main__":
    entry(main)
