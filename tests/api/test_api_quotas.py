"""The daily GPU-second quota through the API: 429 with the reset time and Retry-After."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from studio.entities import Requester
from studio.quotas import next_reset
from studio.store import Store
from tests.api.conftest import generation_count, open_keys, queued_jobs
from tests.api.server import ApiServer
from tests.integration.workers import Deployment

CAROL = Requester(id="discord:3001", name="carol", server="guild-3")
DAN = Requester(id="discord:3002", name="dan", server="guild-3")


@pytest.fixture
async def api(tiny_catalogue: Path, tmp_path: Path) -> AsyncIterator[ApiServer]:
    """An API with a 5-second daily quota and no workers: nothing it queues runs."""
    server = ApiServer(
        Deployment(data_dir=tmp_path, models_file=tiny_catalogue),
        {"ATELIER_DAILY_GPU_SECONDS": "5", "ATELIER_QUOTA_RESET_HOUR": "3"},
    )
    server.start()
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()


async def test_a_person_at_their_quota_gets_429_with_the_reset_time(api: ApiServer) -> None:
    async for keys in open_keys(api.deployment):
        carol, dan = await keys.mint(CAROL, "tests"), await keys.mint(DAN, "tests")
    # Carol's finished work today used 6 GPU-seconds (as the results recorder charges it).
    async with Store(api.deployment.settings().database_path) as store:
        await store.quotas.charge("generation:earlier", CAROL.id, CAROL.server, 6.0, time.time())
    body = {"prompt": "a red barn --seed 11", "steps": 1}
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        refused = await http.post(
            "/v1/generations", json=body, headers={"Authorization": f"Bearer {carol.token}"}
        )
        reset = next_reset(datetime.now(UTC), 3)
        assert refused.status_code == 429
        assert refused.json()["detail"] == (
            "You have used your daily GPU time here: 6.0 s of 5.0 s. "
            f"It resets at {reset.strftime('%Y-%m-%dT%H:%M:%SZ')}."
        )
        assert abs(int(refused.headers["Retry-After"]) - (reset - datetime.now(UTC)).total_seconds()) < 60
        batch = {"template": "a {x}", "rows": [{"x": "barn"}], "steps": 1}
        refused = await http.post(
            "/v1/batches", json=batch, headers={"Authorization": f"Bearer {carol.token}"}
        )
        assert refused.status_code == 429 and "It resets at" in refused.json()["detail"]
        assert generation_count(api.deployment) == 0 and queued_jobs(api.deployment) == 0
        accepted = await http.post(
            "/v1/generations", json=body, headers={"Authorization": f"Bearer {dan.token}"}
        )
        assert accepted.status_code in (200, 201, 202), accepted.text
