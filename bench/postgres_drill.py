"""PostgreSQL drill: the database goes away while generations run, and comes back.

A fresh database on the PostgreSQL at ``--postgres-url`` serves `atelier api` (its followers
record results) with an inference and a post worker on the tiny models. Each cycle submits
generations through the API, then takes the database away for that cycle's outage (no new
connections are allowed, and every open one is terminated: what a restart or a failover does to
the clients), submits more while it is away, and brings it back. Then every acknowledged
generation (202) must end done with its one image.

Reported: generations acknowledged, refused while the database was away (503, with its
sentence), lost (not done, or not with exactly one image), any other answer, tracebacks in the
API's log besides asyncpg's own pool warnings, and the time from the database back to the last
generation recorded (median/max over cycles).

    .venv/bin/python -m bench.postgres_drill                  # 5 outages, 1 s to 10 s
    .venv/bin/python -m bench.postgres_drill --outages 2,2 --per-cycle 3
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/postgres_drill.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import os
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from bench._figures import load_line, machine_info, parser, summarize, table, write_json
from bench._harness import Lab, entry, wait_ready
from bench.redis_drill import api_ready, start_api
from studio.apikeys import ApiKeys
from studio.entities import Requester
from studio.queue import JobQueue
from studio.store import Store
from tests.integration.own_redis import free_port

DEFAULT_OUTAGES = "1,2,3,5,10"  # seconds away per cycle
DEFAULT_POSTGRES = os.environ.get(
    "ATELIER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
OWNER = Requester(id="discord:4242", name="drill", server="drill")
SETTLE_S = 120.0  # the most a cycle's generations may take to be recorded once the database is back


async def away(admin: asyncpg.Connection, name: str) -> None:
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)


async def back(admin: asyncpg.Connection, name: str) -> None:
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


async def states(url: str, ids: list[str]) -> dict[str, tuple[str, int]]:
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetch(
            "SELECT g.id, g.status, (SELECT COUNT(*) FROM images i WHERE i.generation_id = g.id) AS n "
            "FROM generations g WHERE g.id = ANY($1::text[])",
            ids,
        )
    finally:
        await conn.close()
    return {r["id"]: (str(r["status"]), int(r["n"])) for r in found}


async def drill(
    admin_url: str, url: str, name: str, outages: list[float], per_cycle: int, redis_url: str
) -> dict[str, Any]:
    admin = await asyncpg.connect(admin_url)
    with Lab("postgres-drill", redis_url=redis_url) as lab:
        lane = lab.lane(
            "drill",
            database_url=url,
            api_rate_per_minute=1_000_000,
            api_rate_burst=10_000,
            max_jobs_per_user=1000,
        )
        queue = await JobQueue.connect(lane.settings)
        port = free_port()
        api = start_api(lane, port)
        workers = [lane.start("inference"), lane.start("post")]
        acknowledged: list[str] = []
        refused = other = 0
        recover_s: list[float] = []
        try:
            await api_ready(f"http://127.0.0.1:{port}", api)
            await wait_ready(queue, workers)
            async with Store(url) as store:
                token = (await ApiKeys(lane.settings, store).mint(OWNER, "drill")).token
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
            ) as http:

                async def submit(seed: int) -> None:
                    nonlocal refused, other
                    body = {"prompt": f"a paper kite --seed {seed}", "steps": 2}
                    try:
                        answer = await http.post("/v1/generations", json=body)
                    except httpx.TransportError:
                        other += 1
                        return
                    if answer.status_code == 202:
                        acknowledged.append(answer.json()["id"])
                    elif answer.status_code == 503 and "database" in answer.json().get("detail", ""):
                        refused += 1
                    else:
                        other += 1

                seed = 0
                for seconds in outages:
                    for _ in range(per_cycle):
                        await submit(seed := seed + 1)
                    await away(admin, name)
                    ends = time.monotonic() + seconds
                    for _ in range(2):
                        await submit(seed := seed + 1)
                    await asyncio.sleep(max(0.0, ends - time.monotonic()))
                    await back(admin, name)
                    returned = time.monotonic()
                    deadline = returned + SETTLE_S
                    while acknowledged and set((await states(url, acknowledged)).values()) != {("done", 1)}:
                        if time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.1)
                    recover_s.append(time.monotonic() - returned)
        finally:
            await back(admin, name)
            await admin.close()
            await queue.close()
            api.terminate()
            api.wait(timeout=30)
        final = await states(url, acknowledged)
        lost = [i for i in acknowledged if final.get(i) != ("done", 1)]
        log = (lane.logs / "api.log").read_text(errors="replace")
        ours = log.count("Traceback") - log.count("Failed to restore the pool connection floor")
        alive = sum(1 for w in workers if w.process.poll() is None)
        return {
            "outages_s": outages,
            "acknowledged": len(acknowledged),
            "refused_503": refused,
            "other_answers": other,
            "lost": len(lost),
            "tracebacks": max(0, ours),
            "workers_alive": alive,
            "recover_s": recover_s,
        }


async def main_async(args: Any) -> int:
    outages = [float(part) for part in args.outages.split(",") if part.strip()]
    admin = await asyncpg.connect(args.postgres_url)
    name = f"atelier_drill_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = urlunsplit(urlsplit(args.postgres_url)._replace(path=f"/{name}"))
    try:
        result = await drill(args.postgres_url, url, name, outages, args.per_cycle, args.redis_url)
    finally:
        admin = await asyncpg.connect(args.postgres_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(machine_info(args))
    print(load_line())
    print(
        table(
            [
                "outages",
                "acknowledged",
                "refused (503)",
                "other answers",
                "lost",
                "tracebacks",
                "workers alive",
            ],
            [
                [
                    ", ".join(f"{s:g} s" for s in outages),
                    str(result["acknowledged"]),
                    str(result["refused_503"]),
                    str(result["other_answers"]),
                    str(result["lost"]),
                    str(result["tracebacks"]),
                    f"{result['workers_alive']}/2",
                ]
            ],
        )
    )
    recover = summarize(result["recover_s"])
    print(
        f"database back -> every acknowledged generation recorded: median {recover.median:.2f} s, "
        f"max {recover.max:.2f} s"
    )
    write_json(args.json, result)
    return 0 if result["lost"] == 0 and result["other_answers"] == 0 else 1


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0], default_runs=1)
    p.add_argument(
        "--outages", default=DEFAULT_OUTAGES, help=f"seconds away per cycle (default {DEFAULT_OUTAGES})"
    )
    p.add_argument("--per-cycle", type=int, default=4, help="generations submitted before each outage (4)")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="an administrator's URL of the server")
    args = p.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    entry(main)
