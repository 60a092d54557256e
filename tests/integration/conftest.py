from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from studio.app import Studio, open_studio
from tests.integration.own_redis import OwnRedis
from tests.integration.workers import TEST_REDIS_URL, Deployment


@pytest.fixture(scope="session", autouse=True)
def redis_is_there() -> None:
    try:
        redis.Redis.from_url(TEST_REDIS_URL).ping()
    except redis.RedisError as exc:
        pytest.fail(f"These tests need a real Redis at {TEST_REDIS_URL} (set ATELIER_TEST_REDIS_URL): {exc}")


@pytest.fixture(scope="session")
def deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A studio with one inference and one post worker running, shared by the session."""
    dep = Deployment(data_dir=tmp_path_factory.mktemp("studio"), models_file=tiny_catalogue)
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


@pytest.fixture(scope="session")
async def studio(deployment: Deployment) -> AsyncIterator[Studio]:
    await deployment.wait_ready()
    async with open_studio(deployment.settings()) as studio:
        yield studio


@pytest.fixture
def idle(tiny_catalogue: Path, tmp_path: Path) -> Deployment:
    """A studio with no workers at all: whatever reaches its queue stays there to be inspected."""
    return Deployment(data_dir=tmp_path, models_file=tiny_catalogue)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server of the test's own, which it may stop and start (outage drills)."""
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
