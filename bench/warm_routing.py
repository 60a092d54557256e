"""Warm preference: model loads in a small mixed run, with and without it (gpu_worker.advertise).

Two inference workers that keep one model warm each (``cache_size`` 1) and a post worker, once
with ``warm_preference_s`` at its default and once at 0 (off: whichever worker polls first takes
the job, as plain arq does). The same seeded sequence of jobs on two tiny models runs in each:
``--jobs`` one after another, then as many again two at a time. A model load is a job whose
``load_seconds`` is above 0 (the worker's own figure); the end-to-end time of each job is kept too.

    .venv/bin/python -m bench.warm_routing --jobs 12
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/warm_routing.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import random
import time
from dataclasses import dataclass

from bench._figures import load_line, machine_info, parser, summarize, table, worker_overrides
from bench._harness import Lab, Lane, entry, wait_ready
from studio import jobs
from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.recipe import Draft

MODELS = ("tiny-sd15", "tiny-sdxl")
PREFERENCE_S = 3.0


@dataclass(frozen=True)
class Sample:
    model: str
    loaded: bool
    end_to_end: float


async def one_job(studio: Studio, who: Requester, model: str, n: int) -> Sample:
    started = time.perf_counter()
    generation = await studio.generations.imagine(who, f"a harbour {n}", Draft(model=model, batch=1))
    finished = await studio.results.follow(generation.id)
    if finished.generation.status != "done":
        raise RuntimeError(f"generation {generation.id} ended {finished.generation.status}")
    found = await studio.queue.result(generation.id)
    assert found is not None and found[0]
    result = jobs.GENERATE_SPEC.result_of(found[1])
    return Sample(model, result.load_seconds > 0, time.perf_counter() - started)


async def run_lane(lane: Lane, sequence: list[str]) -> tuple[list[Sample], list[Sample]]:
    for _ in range(2):
        lane.start("inference")
    lane.start("post")
    async with open_studio(lane.settings) as studio:
        await wait_ready(studio.queue, lane.workers)
        alone = [
            await one_job(studio, Requester("bench:a", "a"), model, n) for n, model in enumerate(sequence)
        ]
        pairs: list[Sample] = []
        for n in range(0, len(sequence), 2):  # two people at once: both workers busy
            pairs += await asyncio.gather(
                *(
                    one_job(studio, Requester(f"bench:{who}", who), model, n + i)
                    for i, (who, model) in enumerate(zip("bc", sequence[n : n + 2], strict=False))
                )
            )
    lane.stop_all()
    return alone, pairs


def main() -> int:
    p = parser(__doc__ or "", default_runs=1)
    p.add_argument("--jobs", type=int, default=12, help="jobs in each part of the run (default 12)")
    args = p.parse_args()
    rng = random.Random(7)
    sequence = [rng.choice(MODELS) for _ in range(args.jobs)]
    results: dict[str, tuple[list[Sample], list[Sample]]] = {}
    with Lab("warm-routing", args.redis_url, keep=args.keep) as lab:
        for name, preference in (("preference", PREFERENCE_S), ("off", 0.0)):
            lane = lab.lane(
                name,
                **worker_overrides(args),
                cache_size=1,
                warm_preference_s=preference,
                advertise_interval_s=1.0,
            )
            results[name] = asyncio.run(run_lane(lane, sequence))
            print(f"  {name} done", file=sys.stderr)
    print(f"\nWarm preference: 2 inference workers, cache_size 1, {args.jobs} jobs on {' and '.join(MODELS)}")
    print(f"({', '.join(sequence)}), one after another, then two at a time\n")
    rows = []
    for name, (alone, pairs) in results.items():
        rows.append(
            [
                name,
                str(sum(s.loaded for s in alone)),
                str(sum(s.loaded for s in pairs)),
                f"{summarize([s.end_to_end for s in alone]).median * 1000:.0f}",
                f"{summarize([s.end_to_end for s in pairs]).median * 1000:.0f}",
            ]
        )
    print(
        table(
            [
                "warm_preference",
                "loads, one at a time",
                "loads, two at a time",
                "median ms (one)",
                "median ms (two)",
            ],
            rows,
        )
    )
    print(f"\n{machine_info(args)}\n{load_line()}")
    return 0


if __name__ == "__main__":
    entry(main)
