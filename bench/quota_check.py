"""What the daily quota costs each prepare: ``Quotas.check`` against a month of charges.

A store holding 30 days of usage for ``--people`` people (``--per-day`` charged generations
each a day; a big community's month), then ``Quotas.check`` for random people (their usage
since the reset: one indexed SUM, plus the server's role limits), against the per-person cap's
own ``count_in_flight`` (the check every prepare already made; its table left empty here), and
the check on an empty store. In process, SQLite on a temporary folder; no Redis, no workers.

    .venv/bin/python -m bench.quota_check --runs 2000
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/quota_check.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import random
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable

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
from studio.entities import Requester
from studio.quotas import Quotas
from studio.settings import load_settings
from studio.store import Store

SERVER = "1000"
DAY_S = 86400.0


def fill(path: Path, people: int, per_day: int, days: int) -> int:
    """Charges spread over the last ``days`` days, written in one transaction (setup, not measured)."""
    now = time.time()
    rng = random.Random(7)
    rows = [
        (
            f"generation:{person}-{day}-{n}",
            f"discord:{person}",
            SERVER,
            rng.uniform(1, 20),
            now - day * DAY_S - n,
        )
        for person in range(people)
        for day in range(days)
        for n in range(per_day)
    ]
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO quota_charges (id, user_id, server, seconds, charged_at) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("INSERT INTO quota_role_limits VALUES (?, ?, 3600, 'bench', 0)", (SERVER, SERVER))
        db.execute("INSERT INTO quota_role_limits VALUES (?, '1001', 36000, 'bench', 0)", (SERVER,))
    return len(rows)


async def timed(runs: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    for n in range(20):  # warm the page cache and the connection
        await call(n)
    samples = []
    for n in range(runs):
        started = time.perf_counter()
        await call(n)
        samples.append(time.perf_counter() - started)
    return samples


async def measure(folder: Path, runs: int, people: int, per_day: int) -> dict[str, list[float]]:
    settings = load_settings(data_dir=folder, daily_gpu_seconds=600)
    async with Store(settings.database_path):
        pass  # migrated
    rows = fill(settings.database_path, people, per_day, 30)
    print(f"store: {rows} charges ({people} people x {per_day} a day x 30 days)")
    empty = load_settings(data_dir=folder / "empty", daily_gpu_seconds=600)
    samples: dict[str, list[float]] = {}
    rng = random.Random(3)

    def person(_: int) -> Requester:
        who = rng.randrange(people)
        return Requester(f"discord:{who}", "bench", server=SERVER, roles=frozenset({SERVER, "1001"}))

    async with Store(settings.database_path) as store:
        quotas = Quotas(settings, store)
        samples["Quotas.check, month of charges"] = await timed(runs, lambda n: quotas.check(person(n)))
        samples["count_in_flight (the cap's check; no generations)"] = await timed(
            runs, lambda n: store.count_in_flight(person(n).id)
        )
    async with Store(empty.database_path) as store:
        quotas = Quotas(empty, store)
        samples["Quotas.check, empty store"] = await timed(runs, lambda n: quotas.check(person(n)))
    return samples


def main() -> int:
    p = parser(__doc__.splitlines()[0], default_runs=2000)
    p.add_argument("--people", type=int, default=5000)
    p.add_argument("--per-day", type=int, default=4)
    args = p.parse_args()
    check_runs(p, args.runs, 10)
    print(machine_info())
    with tempfile.TemporaryDirectory(prefix="quota-bench-") as tmp:
        samples = asyncio.run(measure(Path(tmp), args.runs, args.people, args.per_day))
    stats = {label: summarize(values) for label, values in samples.items()}
    print(table(STATS_HEADERS, [s.row(label, scale=1e6, digits=0) for label, s in stats.items()]))
    print("(microseconds)")
    print(load_line())
    write_json(args.json, {"samples": samples, "people": args.people, "per_day": args.per_day})
    return 0


if __name__ == "__main__":
    entry(main)
