"""A real worker's health port and metrics through a generation; the API's /healthz with Redis up,
down and back; JSON logs from a real worker process.

Each test has its own redis-server (tests.integration.own_redis) so it can be stopped.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from studio import jobs, metrics
from studio.app import Studio, open_studio
from studio.entities import Requester
from tests.api.server import ApiServer
from tests.integration.own_redis import OwnRedis, OwnRedisDeployment, free_port

ALICE = Requester(id="cli:alice", name="alice")
FAKE_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GaBcDe.abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture
def deployment(tiny_catalogue: Path, tmp_path: Path, own_redis: OwnRedis) -> Iterator[OwnRedisDeployment]:
    dep = OwnRedisDeployment(
        data_dir=tmp_path / "studio", models_file=tiny_catalogue, redis_url=own_redis.url
    )
    dep.data_dir.mkdir()
    yield dep
    dep.stop()


async def until_status(client: httpx.AsyncClient, path: str, status: int, timeout: float = 60) -> None:
    """Poll a health path until it answers ``status`` (a probe, as an orchestrator would)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = (await client.get(path)).status_code
            if last == status:
                return
        except httpx.TransportError as error:
            last = error
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never answered {status}; last {last!r}")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def studio(deployment: OwnRedisDeployment) -> AsyncIterator[Studio]:
    async with open_studio(deployment.settings()) as studio:
        yield studio


async def test_a_workers_metrics_move_through_a_generation_and_its_logs_are_json(
    deployment: OwnRedisDeployment, studio: Studio, own_redis: OwnRedis
) -> None:
    port = free_port()
    deployment.extra_env.update(
        ATELIER_HEALTH_PORT=str(port), ATELIER_LOG_FORMAT="json", DISCORD_TOKEN=FAKE_TOKEN
    )
    deployment.start_worker("inference")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as worker:
        await until_status(worker, "/readyz", 200, timeout=90)
        assert (await worker.get("/healthz")).status_code == 200
        before = samples((await worker.get("/metrics")).text)
        front_end_done = metrics.REGISTRY.get_sample_value(
            "atelier_generations_finished_total", {"status": "done"}
        )

        generation = await studio.generations.imagine(ALICE, "a red cat --steps 2 --seed 7")
        finished = await studio.results.follow(generation.id)
        assert finished.generation.status == "done"
        model = finished.generation.recipe.model

        response = await worker.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        after = samples(response.text)
        for name, labels, moved in (
            ("atelier_jobs_total", {"queue": jobs.INFERENCE, "state": "started", "model": model}, 1),
            ("atelier_jobs_total", {"queue": jobs.INFERENCE, "state": "done", "model": model}, 1),
            ("atelier_images_generated_total", {"model": model}, 1),
            ("atelier_job_run_seconds_count", {"queue": jobs.INFERENCE, "model": model}, 1),
            ("atelier_job_queue_wait_seconds_count", {"queue": jobs.INFERENCE}, 1),
            ("atelier_model_loads_total", {"model": model}, 1),
        ):
            assert value(after, name, **labels) == value(before, name, **labels) + moved, (name, labels)
        assert value(after, "atelier_jobs_running", queue=jobs.INFERENCE) == 0
        assert value(after, "atelier_job_run_seconds_sum", queue=jobs.INFERENCE, model=model) > 0
        # The front end that recorded it counts it too (what the bot's and the API's /metrics show).
        assert (
            metrics.REGISTRY.get_sample_value("atelier_generations_finished_total", {"status": "done"})
            == (front_end_done or 0) + 1
        )

        own_redis.stop()
        assert (await worker.get("/healthz")).status_code == 503
        assert (await worker.get("/readyz")).status_code == 503

    lines = [
        line
        for path in deployment.data_dir.glob("worker-*.log")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("{")
    ]
    entries = [json.loads(line) for line in lines]  # each JSON line parses on its own
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    about = [e for e in entries if e.get("generation_id") == generation.id]
    assert about, "no log line carries the generation id:\n" + "\n".join(lines[-20:])
    assert all(e["job_id"] == generation.id for e in about)
    assert not any(FAKE_TOKEN in line for line in lines)


async def test_the_apis_healthz_follows_redis(deployment: OwnRedisDeployment, own_redis: OwnRedis) -> None:
    api = ApiServer(deployment)
    api.start()
    try:
        await api.wait_ready()
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            scrape = await client.get("/metrics")
            assert scrape.status_code == 200
            assert value(samples(scrape.text), "atelier_queue_depth", queue=jobs.INFERENCE) == 0
            assert "/healthz" not in (await client.get("/openapi.json")).json()["paths"]

            own_redis.stop()
            down = await client.get("/healthz")
            assert (down.status_code, down.text) == (503, "redis unreachable\n")
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/metrics")).status_code == 200  # metrics answer regardless

            own_redis.start()
            await until_status(client, "/healthz", 200, timeout=30)
            assert (await client.get("/readyz")).status_code == 200
    finally:
        api.stop()
    assert "Traceback" not in api.log()
