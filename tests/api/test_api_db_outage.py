"""A PostgreSQL outage under the API: requests meanwhile are refused with a sentence (503,
Retry-After), and every generation acknowledged before it is recorded once the database is back,
whose results arrived while it was away (the followers wait for the database instead of giving up)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from studio.apikeys import ApiKeys
from studio.entities import Requester
from studio.queue import JobQueue
from studio.store import Store
from tests.api.server import ApiServer
from tests.integration.workers import Deployment
from tests.postgres import ADMIN_URL, fresh_database

ALICE = Requester(id="discord:3001", name="alice", server="guild-7")


async def recorded(url: str, generation_ids: list[str]) -> dict[str, tuple[str, int]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT g.id, g.status, (SELECT COUNT(*) FROM images i WHERE i.generation_id = g.id) AS n "
            "FROM generations g WHERE g.id = ANY($1::text[])",
            generation_ids,
        )
    finally:
        await conn.close()
    return {r["id"]: (r["status"], int(r["n"])) for r in rows}


async def test_acknowledged_generations_survive_a_database_outage(
    tiny_catalogue: Path, tmp_path: Path
) -> None:
    async with fresh_database() as url:
        name = urlsplit(url).path.lstrip("/")
        env = {"ATELIER_DATABASE_URL": url, "ATELIER_API_RATE_PER_MINUTE": "100000"}
        dep = Deployment(data_dir=tmp_path, models_file=tiny_catalogue, extra_env=env)
        dep.start_worker("inference")
        dep.start_worker("post")
        api = ApiServer(dep)
        api.start()
        admin = await asyncpg.connect(ADMIN_URL)
        queue = await JobQueue.connect(dep.settings())
        try:
            await api.wait_ready()
            await dep.wait_ready()
            async with Store(url) as store:
                key = await ApiKeys(dep.settings(), store).mint(ALICE, "outage")
            headers = {"Authorization": f"Bearer {key.token}"}
            async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as http:
                ids = []
                for seed in range(3):
                    answer = await http.post(
                        "/v1/generations", json={"prompt": f"a kite --seed {seed}", "steps": 2}
                    )
                    assert answer.status_code == 202, answer.text
                    ids.append(answer.json()["id"])

                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
                )
                refused = await http.post("/v1/generations", json={"prompt": "a kite", "steps": 2})
                assert refused.status_code == 503 and "database can't be reached" in refused.json()["detail"]
                assert refused.headers["retry-after"]
                # The worker finishes them while the database is away: their results wait in Redis.
                deadline = time.monotonic() + 120
                while any([await queue.result(i) is None for i in ids]):
                    assert time.monotonic() < deadline, dep.logs()
                    await asyncio.sleep(0.1)

                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                deadline = time.monotonic() + 60
                while set((await recorded(url, ids)).values()) != {("done", 1)}:
                    assert time.monotonic() < deadline, (await recorded(url, ids), api.log()[-4000:])
                    await asyncio.sleep(0.1)
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
            await queue.close()
            api.stop()
            dep.stop()
        log = api.log()
        assert "the database is unreachable" in log and "the database is back" in log
        assert "failed; it is followed again" not in log  # no follower gave up
