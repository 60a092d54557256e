"""The REST API as a real process, against real Redis, SQLite and worker processes (tiny models)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from PIL import Image

from studio.apikeys import ApiKeys, MintedKey
from studio.entities import Requester
from studio.errors import NotFound
from tests.api.conftest import generation_count, open_keys, queued_jobs
from tests.api.server import ApiServer, free_port
from tests.integration.workers import Deployment

ALICE = Requester(id="discord:1001", name="alice", server="guild-1")
BOB = Requester(id="discord:1002", name="bob", server="guild-1")
CAROL = Requester(id="discord:1003", name="carol", server="guild-1")
MAX_UPLOAD = 200_000
DONE_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def api_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(
        data_dir=tmp_path_factory.mktemp("api"),
        models_file=tiny_catalogue,
        extra_env={"ATELIER_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "ATELIER_MAX_JOBS_PER_USER": "3"},
    )
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def api(api_deployment: Deployment) -> AsyncIterator[ApiServer]:
    server = ApiServer(
        api_deployment,
        {
            "ATELIER_API_RATE_PER_MINUTE": "600",
            "ATELIER_API_RATE_BURST": "40",
            "ATELIER_API_BATCH_MAX_JOBS": "6",
            "ATELIER_API_WEBHOOK_ALLOW_LOOPBACK": "true",
            "ATELIER_API_WEBHOOK_BACKOFF_S": "0.2",
        },
    )
    server.start()
    try:
        await server.wait_ready()
        await api_deployment.wait_ready()
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="module")
async def keys(api: ApiServer) -> AsyncIterator[ApiKeys]:
    async for found in open_keys(api.deployment):
        yield found


@pytest.fixture(scope="module")
async def alice(keys: ApiKeys) -> MintedKey:
    return await keys.mint(ALICE, "tests")


@pytest.fixture(scope="module")
async def bob(keys: ApiKeys) -> MintedKey:
    return await keys.mint(BOB)


def client(api: ApiServer, key: MintedKey | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key.token}"} if key else {}
    return httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30)


async def until_done(http: httpx.AsyncClient, generation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DONE_TIMEOUT
    while time.monotonic() < deadline:
        answer = await http.get(f"/v1/generations/{generation_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["status"] in ("done", "failed", "cancelled"):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"generation {generation_id} did not finish")


class Receiver:
    """A tiny local webhook receiver (loopback only)."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.port = free_port()
        self.fail_first = 0
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        async with self._arrived:
            self._arrived.notify_all()
        if len(self.calls) <= self.fail_first:
            return web.Response(status=503)
        return web.Response(status=204)

    async def wait_calls(self, count: int, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.calls) >= count)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


async def test_generate_poll_fetch_and_the_signed_webhook(
    api: ApiServer, alice: MintedKey, bob: MintedKey
) -> None:
    async with client(api, alice) as http, Receiver() as receiver:
        receiver.fail_first = 1  # the first delivery fails: the webhook is retried
        answer = await http.post(
            "/v1/generations",
            json={
                "prompt": "a lighthouse at dusk --seed 7",
                "batch": 2,
                "steps": 2,
                "webhook_url": receiver.url,
            },
        )
        assert answer.status_code == 202, answer.text
        started = answer.json()
        assert started["status"] == "queued" and started["recipe"]["seed"] == 7
        assert started["webhook"]["status"] == "pending"
        done = await until_done(http, started["id"])
        assert done["status"] == "done", done
        assert [image["seed"] for image in done["images"]] == [7, 8]

        png = await http.get(done["images"][1]["url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        picture = Image.open(io.BytesIO(png.content))
        assert picture.size == (64, 64) and json.loads(picture.info["atelier"])["seed"] == 8
        recipe = (await http.get(done["images"][1]["recipe_url"])).json()
        assert recipe["seed"] == 8 and recipe["mine"] and "Seed: 8" in recipe["parameters"]

        await receiver.wait_calls(2)
        assert len(receiver.calls) == 2, receiver.calls  # one 503, then accepted
        headers, body = receiver.calls[-1]
        expected = "sha256=" + hmac.new(alice.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Atelier-Signature"], expected)
        sent = json.loads(body)
        assert sent["event"] == "generation.finished" and sent["generation"]["id"] == started["id"]
        assert sent["generation"]["status"] == "done" and len(sent["generation"]["images"]) == 2
        final = (await http.get(f"/v1/generations/{started['id']}")).json()
        assert final["webhook"] == {"status": "delivered", "attempts": 2, "error": None}

    async with client(api, bob) as other:
        # Another person's generation does not exist for bob; its public images may be read.
        assert (await other.get(f"/v1/generations/{started['id']}")).status_code == 404
        assert (await other.get(done["images"][0]["url"])).status_code == 200
        assert (await other.get(done["images"][0]["recipe_url"])).json()["mine"] is False

    async with client(api, alice) as http:
        private = await http.post(
            "/v1/generations", json={"prompt": "a secret garden", "steps": 1, "private": True}
        )
        assert private.status_code == 202, private.text
        secret = await until_done(http, private.json()["id"])
    async with client(api, bob) as other:
        for url in (secret["images"][0]["url"], secret["images"][0]["recipe_url"]):
            refused = await other.get(url)
            assert refused.status_code == 404 and refused.json()["detail"] == "That image does not exist."


async def test_a_batch_from_a_template_and_csv(api: ApiServer, keys: ApiKeys) -> None:
    carol = await keys.mint(CAROL, "batch")
    csv_text = "name,city,unused\nAda,Paris,x\nLin,Oslo,y\nNoor,Cairo,z\n"
    async with client(api, carol) as http:
        answer = await http.post(
            "/v1/batches",
            json={"template": "a portrait of {name} in {city} --seed 3", "csv": csv_text, "steps": 1},
        )
        assert answer.status_code == 202, answer.text
        batch = answer.json()
        assert batch["count"] == 3 and [item["row"] for item in batch["generations"]] == [1, 2, 3]
        results = [await until_done(http, item["id"]) for item in batch["generations"]]
    assert [r["recipe"]["prompt"] for r in results] == [
        "a portrait of Ada in Paris",
        "a portrait of Lin in Oslo",
        "a portrait of Noor in Cairo",
    ]
    assert all(r["status"] == "done" and r["recipe"]["seed"] == 3 for r in results)


async def test_bad_input_is_refused_with_a_reason_and_nothing_is_queued(
    api: ApiServer, alice: MintedKey, api_deployment: Deployment
) -> None:
    before, queued = generation_count(api_deployment), queued_jobs(api_deployment)

    async def refused(path: str, expect: int = 422, **request: Any) -> str:
        async with client(api, alice) as http:
            answer = await http.post(path, **request)
        assert answer.status_code == expect, (path, request.get("json"), answer.text)
        detail = answer.json()["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail)

    # Batches: checked whole before anything is queued.
    missing = await refused(
        "/v1/batches",
        json={
            "template": "a {animal} in {place}",
            "rows": [{"animal": "cat", "place": "Rome"}, {"animal": "dog"}],
        },
    )
    assert "Row 2" in missing and "`place`" in missing
    many = await refused("/v1/batches", json={"template": "a {x}", "rows": [{"x": i} for i in range(10_000)]})
    assert "at most 100 rows" in many
    assert "unmatched" in await refused("/v1/batches", json={"template": "a {x", "rows": [{"x": 1}]})
    assert "not a variable" in await refused("/v1/batches", json={"template": "a {x.y}", "rows": [{"x": 1}]})
    assert "one of the two" in await refused(
        "/v1/batches", json={"template": "a {x}", "rows": [{"x": 1}], "csv": "x\n1"}
    )
    assert "Row 2: Steps must be between" in await refused(
        "/v1/batches", json={"template": "a {x}", "rows": [{"x": "cat"}, {"x": "dog --steps 0"}]}
    )
    assert "line" in await refused("/v1/batches", json={"template": "a {x}", "csv": 'x\n"unterminated'})
    assert "Row 2: `--sref` takes `board`" in await refused(  # references are checked per row too
        "/v1/batches", json={"template": "a {x}", "rows": [{"x": "cat"}, {"x": "dog --sref nowhere"}]}
    )
    over_capacity = await refused(
        "/v1/batches", 429, json={"template": "a {x}", "rows": [{"x": i} for i in range(7)], "steps": 1}
    )
    assert "jobs queued or running" in over_capacity

    # Generations: bounds, formats, models, webhooks, threads.
    for fields, words in (
        ({"steps": 0}, "greater than or equal to 1"),
        ({"steps": 100000}, "less than or equal to 150"),
        ({"batch": 0}, "batch"),
        ({"seed": -1}, "seed"),
        ({"guidance": 1e9}, "guidance"),
        ({"aspect": "5:7"}, "aspect must be one of"),
        ({"steps": "many"}, "valid integer"),
        ({"sampler": "magic"}, "sampler must be one of"),
        ({"surprise": True}, "Extra inputs"),
        ({"loras": "not a lora!"}, "LoRA is NAME or NAME:WEIGHT"),
    ):
        assert words in await refused("/v1/generations", json={"prompt": "a cat", **fields}), fields
    assert "Unknown model `nosuch`" in await refused(
        "/v1/generations", json={"prompt": "a cat", "model": "nosuch"}
    )
    assert "prompt is empty" in await refused("/v1/generations", json={"prompt": "--seed 4"})
    assert "Unknown flag" in await refused("/v1/generations", json={"prompt": "a cat --wings 2"})
    assert "JSON decode error" in await refused(
        "/v1/generations", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    for url, words in (
        ("http://example.com/hook", "https://"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://10.1.2.3/hook", "private"),
        ("https://2130706433/hook", "public host name"),
        ("https://metadata.google.internal/x", "public host name"),
        ("https://user:pw@example.com/hook", "credentials"),
    ):
        detail = await refused("/v1/generations", json={"prompt": "a cat", "webhook_url": url})
        assert words in detail, (url, detail)
    nobody = await refused("/v1/generations", 404, json={"prompt": "a cat", "discord_thread_id": "123456"})
    assert "no Atelier project thread" in nobody

    # Uploads: the Studio's checks, and the size cap before the body is read.
    not_image = {"image": ("x.png", b"plain text", "image/png")}
    assert "not an image" in await refused("/v1/remix", files=not_image, data={"prompt": "winter"})
    too_big = {"image": ("x.png", b"\0" * (3 * MAX_UPLOAD), "image/png")}
    assert "larger than" in await refused("/v1/remix", 413, files=too_big, data={"prompt": "winter"})
    assert "Field required" in await refused("/v1/remix", data={"prompt": "winter"})
    assert "at least 3 images" in await refused(
        "/v1/trainings",
        files=[("images", ("a.png", _png(), "image/png"))] * 2,
        data={"name": "mine", "trigger": "zq"},
    )
    assert "Input should be 2 or 4" in await refused(
        "/v1/upscale", json={"generation_id": "nope", "factor": 3}
    )
    assert "does not exist" in await refused("/v1/upscale", 404, json={"generation_id": "nope", "index": 0})

    assert generation_count(api_deployment) == before and queued_jobs(api_deployment) == queued


async def test_remix_an_upload(api: ApiServer, keys: ApiKeys) -> None:
    minted = await keys.mint(CAROL, "remix")
    async with client(api, minted) as http:
        answer = await http.post(
            "/v1/remix",
            files={"image": ("start.png", _png((80, 64)), "image/png")},
            data={"prompt": "the same barn in winter --seed 5", "strength": "0.5", "steps": "2"},
        )
        assert answer.status_code == 202, answer.text
        done = await until_done(http, answer.json()["id"])
    assert done["status"] == "done" and done["recipe"]["strength"] == 0.5 and done["recipe"]["init_image"]


async def test_wrong_or_revoked_keys_are_401(api: ApiServer, keys: ApiKeys) -> None:
    async with client(api) as http:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWJjOmRlZg=="}):
            answer = await http.get("/v1/models", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    minted = await keys.mint(BOB, "soon revoked")
    async with client(api, minted) as http:
        assert (await http.get("/v1/models")).status_code == 200
        await keys.revoke(BOB, minted.key.id)
        assert (await http.get("/v1/models")).status_code == 401
    with pytest.raises(NotFound, match="no live API key"):
        await keys.revoke(ALICE, (await keys.mint(BOB)).key.id)  # not alice's to revoke


async def test_the_rate_limit_answers_429_with_retry_after(api: ApiServer, keys: ApiKeys) -> None:
    minted = await keys.mint(CAROL, "hasty")
    async with client(api, minted) as http:
        answers = await asyncio.gather(*(http.get("/v1/models") for _ in range(60)))
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) >= 40 and 429 in statuses, statuses
    limited = next(a for a in answers if a.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1 and "Too many requests" in limited.json()["detail"]


async def test_models_and_the_openapi_document(api: ApiServer, alice: MintedKey) -> None:
    async with client(api, alice) as http:
        models = (await http.get("/v1/models")).json()
        assert {m["id"] for m in models["base"]} == {"tiny-sd15", "tiny-sdxl", "tiny-flux", "tiny-sd3"}
        assert models["loras"] == []
        flux = next(m for m in models["base"] if m["id"] == "tiny-flux")
        assert (flux["family"], flux["source_kind"], flux["sampler"], flux["negative_prompt"]) == (
            "flux",
            "folder",
            "euler",
            False,
        )
        spec = (await http.get("/openapi.json")).json()
        assert (await http.get("/docs")).status_code == 200
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    upscale = spec["paths"]["/v1/upscale"]["post"]["requestBody"]["content"]
    assert set(upscale) == {"application/json", "multipart/form-data"}


def _png(size: tuple[int, int] = (96, 96)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


async def test_finishing_an_atelier_image_and_an_upload(api: ApiServer, keys: ApiKeys) -> None:
    minted = await keys.mint(BOB, "finishing")
    async with client(api, minted) as http:
        started = await http.post("/v1/generations", json={"prompt": "a red barn --seed 11", "steps": 1})
        assert started.status_code == 202, started.text
        source = {"generation_id": started.json()["id"], "index": 0}
        await until_done(http, source["generation_id"])

        upscaled = await http.post("/v1/upscale", json={**source, "factor": 2})
        assert upscaled.status_code == 201, upscaled.text
        finish = upscaled.json()
        assert (
            finish["kind"] == "upscale"
            and finish["ready"]
            and (finish["width"], finish["height"]) == (128, 128)
        )
        file = await http.get(finish["file_url"])
        assert file.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(file.content)).size == (128, 128)
        assert (await http.get(f"/v1/finishes/{finish['id']}")).json()["id"] == finish["id"]

        graded = await http.post(
            "/v1/grade",
            files={"image": ("up.png", _png(), "image/png")},
            data={"preset": "noir", "grain": "10"},
        )
        assert graded.status_code == 201, graded.text
        assert graded.json()["ready"] and graded.json()["preview_url"]
        grey = Image.open(io.BytesIO((await http.get(graded.json()["file_url"])).content)).convert("RGB")
        red, green, blue = grey.getpixel((48, 48))  # type: ignore[misc]
        assert abs(red - green) < 12 and abs(green - blue) < 12  # noir is black and white

        exported = await http.post("/v1/export", json={**source, "preset": "discord-emoji", "format": "webp"})
        assert exported.status_code == 201, exported.text
        assert exported.json()["content_type"] == "image/webp" and exported.json()["filename"].endswith(
            ".webp"
        )
        data = (await http.get(exported.json()["file_url"])).content
        assert Image.open(io.BytesIO(data)).size == (128, 128)

        inpainted = await http.post(
            "/v1/inpaint", json={**source, "prompt": "a blue door", "box": "25,25,50,50"}
        )
        assert inpainted.status_code == 202, inpainted.text
        done = await until_done(http, inpainted.json()["id"])
        assert done["status"] == "done" and done["recipe"]["mask"], done

    async with client(api) as anonymous:
        assert (await anonymous.get(finish["file_url"])).status_code == 401
    async with client(api, await keys.mint(CAROL)) as other:
        assert (await other.get(finish["file_url"])).status_code == 404  # bob's result, not carol's


async def test_upscale_an_upload_by_each_factor(api: ApiServer, keys: ApiKeys) -> None:
    """Form fields arrive as text: "2" and "4" must reach the Literal[2, 4] factor."""
    minted = await keys.mint(CAROL, "upscale form")
    async with client(api, minted) as http:
        for factor, side in (("2", 160), ("4", 320)):
            answer = await http.post(
                "/v1/upscale",
                files={"image": ("a.png", _png((80, 80)), "image/png")},
                data={"factor": factor},
            )
            assert answer.status_code == 201, (factor, answer.text)
            finish = answer.json()
            assert (finish["width"], finish["height"]) == (side, side), finish
            file = await http.get(finish["file_url"])
            assert Image.open(io.BytesIO(file.content)).size == (side, side)
