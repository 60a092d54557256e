"""After its own restart the API follows every generation it started, not only those with a webhook."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from studio.entities import Requester
from studio.queue import JobQueue
from tests.api.conftest import open_keys
from tests.api.server import ApiServer
from tests.integration.workers import Deployment

ALICE = Requester(id="discord:2001", name="alice", server="guild-9")


def generation_row(dep: Deployment, generation_id: str) -> tuple[str, int]:
    """(status, images recorded), read from SQLite: asking the API would make it follow the job."""
    with sqlite3.connect(dep.settings().database_path) as db:
        status = db.execute("SELECT status FROM generations WHERE id = ?", (generation_id,)).fetchone()
        images = db.execute(
            "SELECT COUNT(*) FROM images WHERE generation_id = ?", (generation_id,)
        ).fetchone()
    return str(status[0]), int(images[0])


async def result_waits_in_redis(dep: Deployment, generation_id: str, timeout: float = 120) -> None:
    """Until a worker has run the job and left its result in Redis (nobody has recorded it)."""
    queue = await JobQueue.connect(dep.settings())
    try:
        deadline = time.monotonic() + timeout
        while await queue.result(generation_id) is None:
            assert time.monotonic() < deadline, dep.logs()
            await asyncio.sleep(0.1)
    finally:
        await queue.close()


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_restarted_api_records_a_generation_nobody_asked_about(
    tiny_catalogue: Path, tmp_path: Path
) -> None:
    dep = Deployment(data_dir=tmp_path, models_file=tiny_catalogue)
    api = ApiServer(dep)
    api.start()
    try:
        await api.wait_ready()
        async for keys in open_keys(dep):
            key = await keys.mint(ALICE, "resume")
        async with httpx.AsyncClient(
            base_url=api.url, headers={"Authorization": f"Bearer {key.token}"}, timeout=30
        ) as http:
            answer = await http.post("/v1/generations", json={"prompt": "a red kite --seed 4", "steps": 2})
        assert answer.status_code == 202, answer.text
        generation_id = answer.json()["id"]
        api.stop()  # nobody follows the job now; it runs and its result waits in Redis

        dep.start_worker("inference")
        dep.start_worker("post")
        await result_waits_in_redis(dep, generation_id)
        assert generation_row(dep, generation_id) == ("queued", 0)

        api.start()  # no request about the job: the API takes it up on its own
        await api.wait_ready()
        await until(lambda: generation_row(dep, generation_id) == ("done", 1), 60, "the API to record it")
        assert "Traceback" not in api.log(), api.log()
    finally:
        api.stop()
        dep.stop()
