"""One batch of 4 vs 4 single-image jobs: end-to-end wall time and images per second.

Same prompt, model (tiny-sd15), steps (4) and size (64x64) everywhere; the singles use seeds
42..45, the very seeds of the batch's four images, so all three modes make the same pictures:

* batch: one Generations.imagine with batch 4 -> Results.follow (which also has the post worker
  compose the grid: a batch pays that round-trip, singles have no grid);
* sequential singles: imagine -> follow, four times over;
* concurrent singles: four imagines at once, then the four follows awaited together (one
  inference worker runs one job at a time, so they still run one after the other).

Modes are interleaved (rotating order) with warm workers.

    .venv/bin/python -m bench.batch_vs_single --runs 6
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/batch_vs_single.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import itertools
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
from bench._harness import Lab, Lane, TimedWait, arq_record, entry, wait_ready
from studio import jobs
from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.recipe import Draft
from studio.results import Finished

IMAGES = 4
SEED = 42
PROMPT = "a lighthouse at dusk"
ME = Requester(id="bench:batch-vs-single", name="bench")
MODES = ("batch", "sequential", "concurrent")
LABELS = {
    "batch": "1 batch of 4 (grid included)",
    "sequential": "4 singles, one after another",
    "concurrent": "4 singles, enqueued at once",
}


def single(i: int) -> Draft:
    return Draft(model="tiny-sd15", batch=1, steps=4, seed=SEED + i)


BATCH = Draft(model="tiny-sd15", batch=IMAGES, steps=4, seed=SEED)


@dataclass(frozen=True)
class Sample:
    mode: str
    end_to_end: float
    worker: float  # sum of Generation.worker_seconds (the pipelines)
    grid: float  # batch only: inference result in -> grid result in (PNG store + grid round-trip)
    idle_gaps: float  # singles: the worker's idle time between its jobs (finish -> next start), summed

    @property
    def overhead(self) -> float:
        return self.end_to_end - self.worker


def checked(finished: Finished) -> float:
    if finished.generation.status != "done" or finished.generation.worker_seconds is None:
        raise RuntimeError(f"generation {finished.generation.id} ended {finished.generation.status}")
    return finished.generation.worker_seconds


async def run_mode(mode: str, studio: Studio, timed: TimedWait) -> Sample:
    started = time.perf_counter()
    grid = 0.0
    if mode == "batch":
        gen = await studio.generations.imagine(ME, PROMPT, BATCH)
        finished = [await studio.results.follow(gen.id)]
        grid = timed.returned[jobs.grid_job_id(gen.id)] - timed.returned[gen.id]
    elif mode == "sequential":
        finished = []
        for i in range(IMAGES):
            gen = await studio.generations.imagine(ME, PROMPT, single(i))
            finished.append(await studio.results.follow(gen.id))
    else:
        gens = [await studio.generations.imagine(ME, PROMPT, single(i)) for i in range(IMAGES)]
        finished = list(await asyncio.gather(*(studio.results.follow(g.id) for g in gens)))
    end_to_end = time.perf_counter() - started
    images = sum(len(f.images) for f in finished)
    if images != IMAGES:
        raise RuntimeError(f"{mode}: {images} images instead of {IMAGES}")
    records = sorted(
        [await arq_record(studio.queue.redis, f.generation.id) for f in finished], key=lambda r: r.started
    )
    gaps = sum(later.started - earlier.finished for earlier, later in itertools.pairwise(records))
    return Sample(mode, end_to_end, sum(checked(f) for f in finished), grid, gaps)


async def measure(lane: Lane, runs: int) -> list[Sample]:
    async with open_studio(lane.settings) as studio:
        await wait_ready(studio.queue, lane.workers)
        timed = TimedWait(studio.queue)
        for mode in MODES:  # warm-up: model load, first inferences, first grid
            await run_mode(mode, studio, timed)
        samples = []
        for i in range(runs):
            order = MODES[i % 3 :] + MODES[: i % 3]
            for mode in order:
                samples.append(await run_mode(mode, studio, timed))
            print(f"  run {i + 1}/{runs}", file=sys.stderr, end="\r")
        print(file=sys.stderr)
        return samples


def report(samples: list[Sample], runs: int) -> dict[str, Any]:
    by_mode = {mode: [s for s in samples if s.mode == mode] for mode in MODES}
    print(f"\nBatch vs single: {IMAGES} images of 64x64, tiny-sd15, 4 steps; {runs} runs per mode (ms)\n")
    rows = []
    for mode in MODES:
        group = by_mode[mode]
        rows.append(summarize([s.end_to_end for s in group]).row(f"{LABELS[mode]}: end-to-end"))
        rows.append(summarize([s.worker for s in group]).row("    worker pipelines (sum)"))
        rows.append(summarize([s.overhead for s in group]).row("    rest (queue, PNG, recording)"))
        if mode == "batch":
            rows.append(summarize([s.grid for s in group]).row("    of which grid (store + round-trip)"))
        else:
            rows.append(summarize([s.idle_gaps for s in group]).row("    worker idle between its 4 jobs"))
    print(table(STATS_HEADERS, rows))

    e2e = {mode: summarize([s.end_to_end for s in by_mode[mode]]) for mode in MODES}
    base = e2e["batch"]
    summary_rows = []
    for mode in MODES:
        rate = summarize([IMAGES / s.end_to_end for s in by_mode[mode]])
        summary_rows.append(
            [
                LABELS[mode],
                f"{IMAGES / e2e[mode].median:.2f}",
                f"{rate.median:.2f}",
                f"{e2e[mode].median / base.median:.2f}x",
                f"{e2e[mode].p90 / base.p90:.2f}x",
            ]
        )
    print()
    print(
        table(
            [
                "",
                "images/s (4/median)",
                "median of images/s",
                "time vs batch (median)",
                "time vs batch (p90)",
            ],
            summary_rows,
        )
    )
    return {
        "samples": [asdict(s) for s in samples],
        "summary": {mode: asdict(e2e[mode]) for mode in MODES},
    }


def main(argv: list[str] | None = None) -> int:
    p = parser("One batch of 4 vs 4 single-image jobs.", default_runs=6)
    args = p.parse_args(argv)
    check_runs(p, args.runs)
    print(machine_info(args))
    with Lab("batch-vs-single", args.redis_url, args.keep) as lab:
        lane = lab.lane("batch", **worker_overrides(args))
        lane.start("inference")
        lane.start("post")
        samples = asyncio.run(measure(lane, args.runs))
    write_json(args.json, report(samples, args.runs))
    print(load_line())
    return 0


if __name__ == "__main__":
    entry(main)
