"""Cold vs warm: the first job on a fresh inference worker (model load included) vs later ones.

Each run starts a fresh inference worker (the post worker lives for the whole benchmark), waits
until it is ready (its health check is written once startup is done), then times:

* the cold job: Generations.imagine -> Results.follow returned, the first job that worker sees;
* ``--warm`` warm jobs on the same model, one after the other.

It reads the worker's own figures from the raw arq result (JobQueue.result: load_seconds,
pipeline_seconds), and proves that warm jobs load nothing: their load_seconds is 0, and the
worker logs "loaded model" exactly once. Exits 1 when that proof fails.

    .venv/bin/python -m bench.cold_warm --runs 4 --warm 3
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/cold_warm.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
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
from bench._harness import Lab, Lane, entry, wait_ready
from studio import jobs
from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.recipe import Draft

PROMPT = "a lighthouse at dusk"
ME = Requester(id="bench:cold-warm", name="bench")
LOADED = "loaded model"  # what gpu_worker.pipelines logs once per load


@dataclass(frozen=True)
class JobSample:
    run: int
    cold: bool
    end_to_end: float
    load: float  # GenerateResult.load_seconds, as the worker reported it
    pipeline: float  # GenerateResult.pipeline_seconds

    @property
    def rest(self) -> float:
        return self.end_to_end - self.load - self.pipeline


@dataclass(frozen=True)
class WorkerRun:
    run: int
    ready_after: float  # spawn -> health check written (imports, torch, arq start-up)
    loads_logged: int


async def one_job(studio: Studio, options: Draft, run: int, cold: bool) -> JobSample:
    started = time.perf_counter()
    gen = await studio.generations.imagine(ME, PROMPT, options)
    finished = await studio.results.follow(gen.id)
    end_to_end = time.perf_counter() - started
    if finished.generation.status != "done":
        raise RuntimeError(f"generation {gen.id} ended {finished.generation.status}")
    found = await studio.queue.result(gen.id)  # the worker's raw reply, as arq stored it
    if found is None or not found[0]:
        raise RuntimeError(f"no successful result for {gen.id}: {found}")
    result = jobs.GENERATE_SPEC.result_of(found[1])
    return JobSample(run, cold, end_to_end, result.load_seconds, result.pipeline_seconds)


async def measure(
    lane: Lane, runs: int, warm: int, options: Draft
) -> tuple[list[JobSample], list[WorkerRun]]:
    samples: list[JobSample] = []
    workers: list[WorkerRun] = []
    async with open_studio(lane.settings) as studio:
        await wait_ready(studio.queue, lane.workers)  # the post worker
        for run in range(1, runs + 1):
            worker = lane.start("inference")
            await wait_ready(studio.queue, [worker])
            samples.append(await one_job(studio, options, run, cold=True))
            for _ in range(warm):
                samples.append(await one_job(studio, options, run, cold=False))
            lane.stop(worker)
            loads = worker.log_text().count(LOADED)
            workers.append(WorkerRun(run, worker.ready_after or 0.0, loads))
            print(f"  worker {run}/{runs} done", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return samples, workers


def report(samples: list[JobSample], workers: list[WorkerRun], options: Draft) -> tuple[bool, dict[str, Any]]:
    cold = [s for s in samples if s.cold]
    warm = [s for s in samples if not s.cold]
    print(
        f"\nCold vs warm: {options.model}, 1 image, {options.steps} steps, 64x64; "
        f"{len(cold)} fresh workers, {len(warm)} warm jobs (milliseconds)\n"
    )
    rows = [
        summarize([s.end_to_end for s in cold]).row("cold job: end-to-end"),
        summarize([s.load for s in cold]).row("    model load (worker's load_seconds)"),
        summarize([s.pipeline for s in cold]).row("    pipeline (first inference)"),
        summarize([s.rest for s in cold]).row("    rest (queue, PNG, recording)"),
        summarize([s.end_to_end for s in warm]).row("warm job: end-to-end"),
        summarize([s.load for s in warm]).row("    model load (worker's load_seconds)"),
        summarize([s.pipeline for s in warm]).row("    pipeline"),
        summarize([s.rest for s in warm]).row("    rest (queue, PNG, recording)"),
    ]
    print(table(STATS_HEADERS, rows))
    cold_e2e = summarize([s.end_to_end for s in cold])
    warm_e2e = summarize([s.end_to_end for s in warm])
    ready = summarize([w.ready_after for w in workers])
    print(
        f"\ncold/warm end-to-end: median {cold_e2e.median / warm_e2e.median:.1f}x, "
        f"p90 {cold_e2e.p90 / warm_e2e.p90:.1f}x"
    )
    print(
        f"worker start-up (spawn -> ready, before any job): median {ready.median:.1f}s, max {ready.max:.1f}s"
    )

    warm_loads = [s.load for s in warm]
    checks = [
        ("every cold job loaded the model (load_seconds > 0)", all(s.load > 0 for s in cold)),
        ("every warm job loaded nothing (load_seconds == 0)", all(x == 0.0 for x in warm_loads)),
        (f"each worker logged {LOADED!r} exactly once", all(w.loads_logged == 1 for w in workers)),
    ]
    print()
    for label, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}: {label}")
    logged = [w.loads_logged for w in workers]
    print(f"  warm load_seconds seen: {sorted(set(warm_loads))}; loads logged per worker: {logged}")
    ok = all(passed for _, passed in checks)
    return ok, {
        "samples": [asdict(s) for s in samples],
        "workers": [asdict(w) for w in workers],
        "summary": {"cold_end_to_end": asdict(cold_e2e), "warm_end_to_end": asdict(warm_e2e)},
        "checks": {label: passed for label, passed in checks},
    }


def main(argv: list[str] | None = None) -> int:
    p = parser("Cold (first job on a fresh worker) vs warm jobs.", default_runs=4)
    p.add_argument("--warm", type=int, default=3, help="warm jobs per fresh worker (default 3)")
    p.add_argument("--model", default="tiny-sd15", help="catalogue model (default tiny-sd15)")
    args = p.parse_args(argv)
    check_runs(p, args.runs)
    if args.warm < 1:
        p.error("--warm must be at least 1")
    options = Draft(model=args.model, batch=1, steps=4, seed=42)
    print(machine_info(args))
    with Lab("cold-warm", args.redis_url, args.keep) as lab:
        lane = lab.lane("cold", **worker_overrides(args))
        lane.start("post")
        samples, workers = asyncio.run(measure(lane, args.runs, args.warm, options))
    ok, data = report(samples, workers, options)
    write_json(args.json, data)
    print(load_line())
    return 0 if ok else 1


if __name__ == "__main__":
    entry(main)
