"""The API's /readyz follows its database too: PostgreSQL refusing connections makes it 503
(every request needs the store), and it is ready again once the database is back."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from tests.api.server import ApiServer
from tests.integration.test_metrics_health import until_status
from tests.integration.workers import Deployment
from tests.postgres import ADMIN_URL, fresh_database


async def test_readyz_follows_the_database(tiny_catalogue: Path, tmp_path: Path) -> None:
    async with fresh_database() as url:
        name = urlsplit(url).path.lstrip("/")
        dep = Deployment(
            data_dir=tmp_path, models_file=tiny_catalogue, extra_env={"ATELIER_DATABASE_URL": url}
        )
        api = ApiServer(dep)
        api.start()
        admin = await asyncpg.connect(ADMIN_URL)
        try:
            await api.wait_ready()
            async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
                assert (await client.get("/readyz")).status_code == 200
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
                )
                down = await client.get("/readyz")
                assert (down.status_code, down.text) == (503, "database unreachable\n")
                assert (await client.get("/healthz")).status_code == 200  # alive: Redis answers

                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                await until_status(client, "/readyz", 200, timeout=30)
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
            api.stop()
