"""The API against hostile or unlucky requests: non-JSON numbers, lone surrogates, upload form
fields, no worker for a finishing job, a forged Host header. Real API process, real Redis; the
studio starts with no workers (one is started and killed for the last test)."""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from studio.apikeys import MintedKey
from studio.entities import Requester
from tests.api.conftest import generation_count, open_keys, queued_jobs
from tests.api.server import ApiServer
from tests.integration.workers import Deployment

PUBLIC_URL = "https://atelier.example.test/studio"
NO_WORKER_S = 5.0  # a finishing request with no worker must answer well before this


@pytest.fixture(scope="module")
def edge_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return Deployment(
        data_dir=tmp_path_factory.mktemp("edges"),
        models_file=tiny_catalogue,
        extra_env={"ATELIER_API_RATE_PER_MINUTE": "100000", "ATELIER_API_RATE_BURST": "1000"},
    )


@pytest.fixture(scope="module")
async def edge_api(edge_deployment: Deployment) -> AsyncIterator[ApiServer]:
    server = ApiServer(edge_deployment, {"ATELIER_API_PUBLIC_URL": PUBLIC_URL})
    server.start()
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()
        edge_deployment.stop()
    assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="module")
async def edge_key(edge_api: ApiServer) -> MintedKey:
    async for keys in open_keys(edge_api.deployment):
        return await keys.mint(Requester(id="discord:5150", name="edgy", server="guild-5"), "edges")
    raise AssertionError("unreachable")


def client(api: ApiServer, key: MintedKey) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {key.token}"}, timeout=30)


def _png(size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 90, 160)).save(out, format="PNG")
    return out.getvalue()


def _reason(answer: httpx.Response) -> str:
    detail: Any = answer.json()["detail"]
    return detail if isinstance(detail, str) else " ".join(item["msg"] for item in detail)


async def test_nan_infinity_and_lone_surrogates_are_refused_with_a_reason(
    edge_api: ApiServer, edge_key: MintedKey
) -> None:
    before = generation_count(edge_api.deployment), queued_jobs(edge_api.deployment)
    cases = [
        ("/v1/generations", b'{"prompt": "a cat", "guidance": NaN}', "NaN is not a JSON number"),
        ("/v1/generations", b'{"prompt": "a cat", "guidance": Infinity}', "Infinity is not a JSON number"),
        ("/v1/generations", b'{"prompt": "a cat", "guidance": -Infinity}', "-Infinity is not a JSON number"),
        ("/v1/generations", b'{"prompt": "a \\ud800 cat"}', "lone UTF-16 surrogate"),
        ("/v1/generations", b'{"prompt": "a cat", "\\udfff": 1}', "lone UTF-16 surrogate"),
        ("/v1/batches", b'{"template": "a {x}", "rows": [{"x": NaN}]}', "NaN is not a JSON number"),
        ("/v1/batches", b'{"template": "a {x}", "rows": [{"x": "\\udc00"}]}', "lone UTF-16 surrogate"),
        ("/v1/upscale", b'{"generation_id": "x", "index": NaN}', "NaN is not a JSON number"),
        ("/v1/upscale", b'{"generation_id": "\\ud800"}', "lone UTF-16 surrogate"),
        ("/v1/grade", b'{"generation_id": "x", "exposure": -Infinity}', "-Infinity is not a JSON number"),
        ("/v1/export", b'{"generation_id": "x", "preset": "\\ud83d"}', "lone UTF-16 surrogate"),
        ("/v1/inpaint", b'{"generation_id": "x", "box": "1,1,5,5", "prompt": "a", "seed": NaN}', "NaN"),
    ]
    async with client(edge_api, edge_key) as http:
        for path, body, words in cases:
            answer = await http.post(path, content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 422, (path, body, answer.text)
            assert words in _reason(answer), (path, body, answer.text)
        # A surrogate pair is ordinary text (an emoji) and still goes through.
        fine = await http.post(
            "/v1/generations",
            content=b'{"prompt": "a cat \\ud83d\\ude00", "steps": 1}',
            headers={"Content-Type": "application/json"},
        )
        assert fine.status_code == 202, fine.text
        assert fine.json()["recipe"]["prompt"] == "a cat \U0001f600"
    assert generation_count(edge_api.deployment) == before[0] + 1
    assert queued_jobs(edge_api.deployment) == before[1] + 1


async def test_response_urls_use_the_public_url_not_the_host_header(
    edge_api: ApiServer, edge_key: MintedKey
) -> None:
    async with client(edge_api, edge_key) as http:
        forged = {"Host": "evil.example:666", "X-Forwarded-Host": "evil.example"}
        started = await http.post("/v1/generations", json={"prompt": "a quiet harbour"}, headers=forged)
        assert started.status_code == 202, started.text
        assert started.json()["url"] == f"{PUBLIC_URL}/v1/generations/{started.json()['id']}"
        listed = await http.get("/v1/generations", headers=forged)
        urls = [g["url"] for g in listed.json()["generations"]]
        assert urls and all(url.startswith(f"{PUBLIC_URL}/v1/generations/") for url in urls), urls
        assert "evil" not in listed.text


async def test_upload_factors_and_finishing_with_no_worker_answer_at_once(
    edge_api: ApiServer, edge_key: MintedKey
) -> None:
    queued = queued_jobs(edge_api.deployment)
    async with client(edge_api, edge_key) as http:
        for factor in ("2", "4", " 4", None):
            data = {} if factor is None else {"factor": factor}
            started = time.monotonic()
            answer = await http.post(
                "/v1/upscale", files={"image": ("a.png", _png(), "image/png")}, data=data
            )
            # The factor was accepted (a refused one is 422): the studio then finds no worker.
            assert answer.status_code == 503, (factor, answer.text)
            assert "no inference worker is running" in _reason(answer)
            assert time.monotonic() - started < NO_WORKER_S
        for factor in ("3", "8", "x", "", "2.0", "-2"):
            answer = await http.post(
                "/v1/upscale", files={"image": ("a.png", _png(), "image/png")}, data={"factor": factor}
            )
            assert answer.status_code == 422, (factor, answer.text)
            assert "Input should be 2 or 4" in _reason(answer), (factor, answer.text)
        for path, data in (("/v1/grade", {"preset": "noir"}), ("/v1/export", {"preset": "discord-emoji"})):
            started = time.monotonic()
            answer = await http.post(path, files={"image": ("a.png", _png(), "image/png")}, data=data)
            assert answer.status_code == 503, (path, answer.text)
            assert "no post worker is running" in _reason(answer)
            assert time.monotonic() - started < NO_WORKER_S
    assert queued_jobs(edge_api.deployment) == queued  # nothing was left queued for a later worker


async def test_a_worker_that_dies_before_taking_the_job_ends_the_wait(
    edge_api: ApiServer, edge_key: MintedKey, edge_deployment: Deployment
) -> None:
    """Its health key outlives it by up to 11 s: the request then fails with 503, not after 150 s."""
    worker = edge_deployment.start_worker("post")
    await edge_deployment.wait_ready(kinds=("post",))
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    queued = queued_jobs(edge_api.deployment)
    async with client(edge_api, edge_key) as http:
        started = time.monotonic()
        answer = await http.post(
            "/v1/grade", files={"image": ("a.png", _png(), "image/png")}, data={"preset": "noir"}, timeout=60
        )
        waited = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert "post worker" in _reason(answer)
    assert waited < 30, waited  # the health key's 11 s, a 5 s check, and slack for a loaded machine
    assert queued_jobs(edge_api.deployment) == queued  # the job was withdrawn, not left to run later
