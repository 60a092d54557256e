from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from studio.apikeys import ApiKeys
from studio.store import Store
from tests.integration.workers import TEST_REDIS_URL, Deployment


@pytest.fixture(scope="session", autouse=True)
def redis_is_there() -> None:
    try:
        redis.Redis.from_url(TEST_REDIS_URL).ping()
    except redis.RedisError as exc:
        pytest.fail(f"These tests need a real Redis at {TEST_REDIS_URL} (set ATELIER_TEST_REDIS_URL): {exc}")


async def open_keys(deployment: Deployment) -> AsyncIterator[ApiKeys]:
    """The key use cases on the deployment's own database (as /apikey would reach them)."""
    settings = deployment.settings()
    async with Store(settings.database_path) as store:
        yield ApiKeys(settings, store)


def generation_count(deployment: Deployment) -> int:
    path: Path = deployment.settings().database_path
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])


def queued_jobs(deployment: Deployment) -> int:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        counts = [client.zcard(f"{deployment.prefix}:{kind}") for kind in ("inference", "training", "post")]
        return sum(int(count) for count in counts)  # type: ignore[arg-type,misc]
    finally:
        client.close()
