"""Queue overhead: a generation's end-to-end wall time minus the worker's own pipeline time.

Two configurations, measured in the same run with warm workers, their runs interleaved:

* (a) "arq defaults": the workers poll their queue every 0.5 s (ATELIER_POLL_DELAY_S=0.5) and the
  caller waits with arq's own ``Job.result(poll_delay=0.5)`` polling, then records the result
  (Results.follow, which then finds the result at once);
* (b) ours: the default poll delay (0.02 s) and Results.follow, woken by pub/sub on completion.

A generation is Generations.imagine -> Results.follow returned (result recorded: PNGs stored, SQLite
updated); tiny-sd15, 1 image, 4 steps, 64x64. Overhead = that minus Generation.worker_seconds
(the diffusion itself, as the worker reports it). arq's own timestamps split it into parts.

Also: the grid round-trip (4 PNGs through the post queue and back, as Studio does for a batch),
minus the post worker's own time.

    .venv/bin/python -m bench.queue_overhead --runs 12
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/queue_overhead.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import contextlib
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from arq.jobs import Job

from bench._figures import (
    STATS_HEADERS,
    check_runs,
    load_line,
    machine_info,
    ms,
    parser,
    summarize,
    table,
    worker_overrides,
    write_json,
)
from bench._harness import Lab, Lane, TimedWait, arq_record, entry, idle_cpu, wait_ready
from studio import jobs
from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.recipe import Draft

ARQ_POLL_S = 0.5  # arq's default, for both the worker's queue poll and Job.result
PROMPT = "a lighthouse at dusk"
SINGLE = Draft(model="tiny-sd15", batch=1, steps=4, seed=42)
BATCH = Draft(model="tiny-sd15", batch=4, steps=4, seed=42)
ME = Requester(id="bench:queue-overhead", name="bench")
WARMUP_SINGLES = 2
IDLE_WINDOW_S = 3.0
CONFIGS = ("arq", "ours")
LABELS = {"arq": "(a) arq defaults (poll 0.5 s + Job.result)", "ours": "(b) ours (poll 0.02 s + pub/sub)"}


@dataclass(frozen=True)
class GenSample:
    end_to_end: float
    worker: float  # Generation.worker_seconds (pipeline only)
    overhead: float
    # end_to_end, split at arq's timestamps (they add up to it, to clock resolution):
    to_enqueue: float  # imagine: validate, SQLite writes, until arq stamped the job enqueued
    pickup: float  # enqueued -> a worker started it (the worker's queue poll)
    worker_extra: float  # started -> finished, minus the pipeline (lease, events, PNG encoding)
    notify: float  # finished -> the caller's wait returned (result stored, caller woken or polled)
    record: float  # wait returned -> follow returned (artifacts written, SQLite updated)
    result_bytes: int


@dataclass(frozen=True)
class GridSample:
    round_trip: float  # enqueue -> result decoded by the caller
    in_worker: float  # compose_grid as arq timed it
    pickup: float
    result_bytes: int  # what arq stored (and the caller read back)
    grid_bytes: int  # of which the grid PNG
    inputs_bytes: int  # and the 4 PNGs sent (arq keeps a job's arguments in its result)

    @property
    def overhead(self) -> float:
        return self.round_trip - self.in_worker


def arq_job(studio: Studio, job_id: str, kind: str) -> Job:
    return Job(
        job_id,
        studio.queue.redis,
        _queue_name=studio.settings.queue_name(kind),
        _deserializer=jobs.deserialize,
    )


async def generation(config: str, studio: Studio, timed: TimedWait) -> GenSample:
    started_wall = time.time()
    started = time.perf_counter()
    gen = await studio.generations.imagine(ME, PROMPT, SINGLE)
    if config == "arq":
        await arq_job(studio, gen.id, jobs.INFERENCE).result(poll_delay=ARQ_POLL_S)
        waited = time.time()
        finished = await studio.results.follow(gen.id)  # finds the result at once; records it
    else:
        finished = await studio.results.follow(gen.id)
        waited = timed.returned[gen.id]
    end_to_end = time.perf_counter() - started
    ended_wall = time.time()
    if finished.generation.status != "done" or finished.generation.worker_seconds is None:
        raise RuntimeError(f"generation {gen.id} ended {finished.generation.status}")
    record = await arq_record(studio.queue.redis, gen.id)
    worker = finished.generation.worker_seconds
    return GenSample(
        end_to_end=end_to_end,
        worker=worker,
        overhead=end_to_end - worker,
        to_enqueue=record.enqueued - started_wall,
        pickup=record.pickup,
        worker_extra=record.in_worker - worker,
        notify=waited - record.finished,
        record=ended_wall - waited,
        result_bytes=record.size,
    )


async def grid(config: str, studio: Studio, pngs: list[bytes]) -> GridSample:
    """What Results._grid does, minus storing the grid: enqueue on the post queue, wait, decode."""
    job_id = jobs.grid_job_id(f"bench-{secrets.token_hex(8)}")
    payload = jobs.ComposeGridJob(images=pngs).model_dump()
    started = time.perf_counter()
    await studio.queue.enqueue(jobs.COMPOSE_GRID, job_id, payload)
    if config == "arq":
        value = await arq_job(studio, job_id, jobs.POST).result(poll_delay=ARQ_POLL_S)
    else:
        success, value = await studio.queue.wait(job_id)
        if not success:
            raise RuntimeError(f"grid job failed: {value}")
    png = jobs.COMPOSE_GRID_SPEC.result_of(value).png
    round_trip = time.perf_counter() - started
    record = await arq_record(studio.queue.redis, job_id)
    inputs = sum(len(p) for p in pngs)
    return GridSample(round_trip, record.in_worker, record.pickup, record.size, len(png), inputs)


async def warm_up(studio: Studio) -> list[bytes]:
    """Load the model, run the first inferences and a grid; return the 4 PNGs of that batch."""
    gen = await studio.generations.imagine(ME, PROMPT, BATCH)
    finished = await studio.results.follow(gen.id)
    for _ in range(WARMUP_SINGLES):
        await studio.results.follow((await studio.generations.imagine(ME, PROMPT, SINGLE)).id)
    return [studio.artifacts.get(image.artifact) for image in finished.images]


Measured = tuple[dict[str, list[GenSample]], dict[str, list[GridSample]], dict[str, float | None]]


async def measure(lanes: dict[str, Lane], runs: int) -> Measured:
    async with contextlib.AsyncExitStack() as stack:
        studios = {
            name: await stack.enter_async_context(open_studio(lane.settings)) for name, lane in lanes.items()
        }
        for name, studio in studios.items():
            await wait_ready(studio.queue, lanes[name].workers)
            ready = ", ".join(f"{w.kind} {w.ready_after:.1f}s" for w in lanes[name].workers)
            print(f"  {name}: workers ready ({ready})", file=sys.stderr)
        timed = {name: TimedWait(studio.queue) for name, studio in studios.items()}
        pngs = {}
        for name, studio in studios.items():
            pngs[name] = await warm_up(studio)
        workers = [w for name in CONFIGS for w in lanes[name].workers]
        shares = await idle_cpu(workers, IDLE_WINDOW_S)
        idle = {f"{name} {w.kind}": shares[w.pid] for name in CONFIGS for w in lanes[name].workers}
        gens: dict[str, list[GenSample]] = {name: [] for name in CONFIGS}
        grids: dict[str, list[GridSample]] = {name: [] for name in CONFIGS}
        for i in range(runs):
            order = CONFIGS if i % 2 == 0 else CONFIGS[::-1]  # alternate, so drift hits both alike
            for name in order:
                gens[name].append(await generation(name, studios[name], timed[name]))
            for name in order:
                grids[name].append(await grid(name, studios[name], pngs[name]))
            print(f"  run {i + 1}/{runs}", file=sys.stderr, end="\r")
        print(file=sys.stderr)
        return gens, grids, idle


def report(
    gens: dict[str, list[GenSample]],
    grids: dict[str, list[GridSample]],
    idle: dict[str, float | None],
    runs: int,
) -> dict[str, Any]:
    print(
        f"\nQueue overhead: tiny-sd15, 1 image, 4 steps, 64x64; {runs} runs per configuration, warm workers"
    )
    print("(milliseconds; overhead = end-to-end - Generation.worker_seconds)\n")
    rows = []
    for name in CONFIGS:
        samples = gens[name]
        rows.append(summarize([s.end_to_end for s in samples]).row(f"{LABELS[name]}: end-to-end"))
        rows.append(summarize([s.worker for s in samples]).row("    worker pipeline"))
        rows.append(summarize([s.overhead for s in samples]).row("    overhead"))
    print(table(STATS_HEADERS, rows))

    over = {name: summarize([s.overhead for s in gens[name]]) for name in CONFIGS}
    e2e = {name: summarize([s.end_to_end for s in gens[name]]) for name in CONFIGS}
    print(
        f"\noverhead ratio (a)/(b): median {over['arq'].median / over['ours'].median:.1f}x, "
        f"p90 {over['arq'].p90 / over['ours'].p90:.1f}x; "
        f"end-to-end ratio: median {e2e['arq'].median / e2e['ours'].median:.2f}x"
    )

    parts = [
        ("imagine until enqueued", "to_enqueue"),
        ("enqueued -> worker started (poll)", "pickup"),
        ("in worker, not pipeline", "worker_extra"),
        ("finished -> caller's wait returned", "notify"),
        ("recording (PNG files, SQLite)", "record"),
    ]
    print("\nwhere the overhead goes (medians, ms; from arq's 1 ms timestamps):")
    part_rows = [
        [label, *(ms(summarize([getattr(s, key) for s in gens[n]]).median) for n in CONFIGS)]
        for label, key in parts
    ]
    print(table(["", "(a) arq", "(b) ours"], part_rows))
    print(f"result stored by arq per 1-image job: {gens['ours'][-1].result_bytes} bytes (payload + PNG)")

    print("\nGrid round-trip (4 PNGs of 64x64 -> post queue -> grid PNG back), ms:")
    grid_rows = []
    for name in CONFIGS:
        trips = grids[name]
        grid_rows.append(summarize([g.round_trip for g in trips]).row(f"{LABELS[name]}: round-trip"))
        grid_rows.append(summarize([g.in_worker for g in trips]).row("    compose in worker"))
        grid_rows.append(summarize([g.pickup for g in trips]).row("    enqueued -> started (poll)"))
        grid_rows.append(summarize([g.overhead for g in trips]).row("    overhead"))
    print(table(STATS_HEADERS, grid_rows))
    grid_over = {name: summarize([s.overhead for s in grids[name]]) for name in CONFIGS}
    print(
        f"\ngrid overhead ratio (a)/(b): median {grid_over['arq'].median / grid_over['ours'].median:.1f}x, "
        f"p90 {grid_over['arq'].p90 / grid_over['ours'].p90:.1f}x"
    )
    last = grids["ours"][-1]
    print(
        f"grid job result stored by arq: {last.result_bytes} bytes, of which the grid PNG {last.grid_bytes} "
        f"and the 4 input PNGs {last.inputs_bytes} (arq stores a job's arguments with its result)"
    )
    shares = ", ".join("n/a" if v is None else f"{k} {v * 100:.1f}%" for k, v in idle.items())
    print(f"\nidle workers' CPU use ({IDLE_WINDOW_S:.0f} s window, % of one core): {shares}")
    return {
        "idle_cpu": idle,
        "generations": {n: [asdict(s) for s in gens[n]] for n in CONFIGS},
        "grids": {n: [asdict(s) for s in grids[n]] for n in CONFIGS},
        "summary": {
            n: {
                "end_to_end": asdict(e2e[n]),
                "overhead": asdict(over[n]),
                "grid_overhead": asdict(grid_over[n]),
            }
            for n in CONFIGS
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(
        "Queue overhead: end-to-end minus worker pipeline time, arq defaults vs ours.", default_runs=12
    )
    args = p.parse_args(argv)
    check_runs(p, args.runs)
    print(machine_info(args))
    with Lab("queue-overhead", args.redis_url, args.keep) as lab:
        common = worker_overrides(args)
        lanes = {
            "arq": lab.lane("arq", poll_delay_s=ARQ_POLL_S, **common),
            "ours": lab.lane("ours", **common),
        }
        for name, lane in lanes.items():
            print(
                f"  {name}: queue prefix {lane.settings.queue_prefix}, poll {lane.settings.poll_delay_s}s",
                file=sys.stderr,
            )
            lane.start("inference")
            lane.start("post")
        gens, grids, idle = asyncio.run(measure(lanes, args.runs))
    write_json(args.json, report(gens, grids, idle, args.runs))
    print(load_line())
    return 0


if __name__ == "__main__":
    entry(main)
