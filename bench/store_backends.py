"""The store on PostgreSQL against SQLite, in the same run: what each operation of a generation's
life costs (submit under the cap, start, record a batch of four, read it back, the feed), and
the submit's throughput from 20 concurrent callers.

In process, no Redis or workers: a SQLite file in a temporary folder, and a fresh database on
the PostgreSQL at ``--postgres-url`` (dropped afterwards). Both on this machine, so Postgres'
figures include a loopback round trip per statement and no network beyond it.

    .venv/bin/python -m bench.store_backends --runs 300
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/store_backends.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import asyncpg

from bench._figures import (
    STATS_HEADERS,
    check_runs,
    load_line,
    machine_info,
    parser,
    summarize,
    table,
    write_json,
)
from bench._harness import entry
from studio.recipe import Recipe
from studio.store import Store

RECIPE = Recipe(
    model="m", family="sd15", prompt="a lantern", seed=1, steps=4, guidance=5.0, width=64, height=64, batch=4
)
DEFAULT_POSTGRES = os.environ.get(
    "ATELIER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def timed(samples: dict[str, list[float]], label: str, call: Awaitable[Any]) -> Any:
    started = time.perf_counter()
    result = await call
    samples.setdefault(label, []).append(time.perf_counter() - started)
    return result


async def life_cycles(store: Store, runs: int) -> dict[str, list[float]]:
    await store.ensure_user("bench:a", "a")
    project = await store.create_project("bench:a", "bench", server="s")
    samples: dict[str, list[float]] = {}
    for n in range(runs + 10):
        into = samples if n >= 10 else {}  # the first ten warm the caches and the pool
        gid = f"g{n}"
        await timed(
            into,
            "submit (cap check + insert)",
            store.add_generation(gid, project.id, "bench:a", RECIPE, server="s", limit=10),
        )
        await timed(into, "mark running", store.mark_running(gid, 1))
        images = [(i, f"{n:060x}{i:04x}", RECIPE.for_image(i)) for i in range(4)]
        await timed(
            into, "record a batch of 4 (one transaction)", store.finish_generation(gid, images, None, 1.0, 1)
        )
        await timed(into, "read it back (generation + images)", _read(store, gid))
        await timed(
            into, "feed page (top public images)", store.top_public_images("s", 0.0, None, None, 10, 0)
        )
    return samples


async def _read(store: Store, generation_id: str) -> None:
    await store.get_generation(generation_id)
    await store.images_of(generation_id)


async def concurrent_submits(store: Store, callers: int, each: int) -> float:
    """Submits per second with ``callers`` people submitting at once (each under its own cap)."""
    for c in range(callers):
        await store.ensure_user(f"bench:c{c}", "c")
    project = await store.create_project("bench:c0", "burst")

    async def caller(c: int) -> None:
        for n in range(each):
            await store.add_generation(f"c{c}-{n}", project.id, f"bench:c{c}", RECIPE, limit=each + 1)

    started = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(callers)))
    return callers * each / (time.perf_counter() - started)


async def on(target: Path | str, runs: int) -> tuple[dict[str, list[float]], float]:
    async with Store(target) as store:
        return await life_cycles(store, runs), await concurrent_submits(store, 20, max(runs // 20, 5))


async def measure(folder: Path, runs: int, postgres_url: str) -> dict[str, Any]:
    sqlite_samples, sqlite_rate = await on(folder / "bench.db", runs)
    name = f"atelier_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
        postgres_samples, postgres_rate = await on(url, runs)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return {
        "sqlite": sqlite_samples,
        "postgres": postgres_samples,
        "rates": {"sqlite": sqlite_rate, "postgres": postgres_rate},
    }


def main() -> int:
    p = parser(__doc__.splitlines()[0], default_runs=300)
    p.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="an administrator's URL (a database is made and dropped)",
    )
    args = p.parse_args()
    check_runs(p, args.runs, 20)
    print(machine_info())
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        figures = asyncio.run(measure(Path(tmp), args.runs, args.postgres_url))
    rows = []
    for label, sqlite_values in figures["sqlite"].items():
        sqlite_stats, postgres_stats = summarize(sqlite_values), summarize(figures["postgres"][label])
        rows.append(sqlite_stats.row(f"{label}: SQLite", scale=1e3, digits=2))
        rows.append(postgres_stats.row(f"{label}: Postgres", scale=1e3, digits=2))
        rows.append(
            [
                "  Postgres / SQLite (median)",
                f"{postgres_stats.median / sqlite_stats.median:.2f}×",
                "",
                "",
                "",
                "",
            ]
        )
    print(table(STATS_HEADERS, rows))
    print("(milliseconds)")
    rates = figures["rates"]
    print(
        f"submits/s from 20 concurrent callers: SQLite {rates['sqlite']:.0f}, "
        f"Postgres {rates['postgres']:.0f} ({rates['postgres'] / rates['sqlite']:.2f}×)"
    )
    print(load_line())
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    entry(main)
