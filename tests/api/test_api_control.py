"""POST /v1/control: a ControlNet generation from an uploaded image, through a real API process,
post worker (the canny map) and inference worker on the tiny models."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from studio.apikeys import ApiKeys
from studio.entities import Requester
from tests.api.conftest import generation_count, open_keys, queued_jobs
from tests.api.server import ApiServer
from tests.api.test_api import client, until_done
from tests.integration.workers import Deployment

DORA = Requester(id="discord:1004", name="dora", server="guild-1")


@pytest.fixture(scope="module")
def api_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(data_dir=tmp_path_factory.mktemp("api-control"), models_file=tiny_catalogue)
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def api(api_deployment: Deployment) -> AsyncIterator[ApiServer]:
    server = ApiServer(api_deployment, {"ATELIER_API_RATE_PER_MINUTE": "600", "ATELIER_API_RATE_BURST": "40"})
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


def drawing() -> bytes:
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).rectangle((16, 12, 46, 50), fill=(20, 40, 160))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def test_control_upload_makes_a_controlled_generation(api: ApiServer, keys: ApiKeys) -> None:
    minted = await keys.mint(DORA, "control")
    async with client(api, minted) as http:
        answer = await http.post(
            "/v1/control",
            files={"image": ("drawing.png", drawing(), "image/png")},
            data={
                "prompt": "a house --seed 3",
                "steps": "2",
                "control_strength": "1.2",
                "control_end": "0.8",
            },
        )
        assert answer.status_code == 202, answer.text
        done = await until_done(http, answer.json()["id"])
    assert done["status"] == "done", done
    control = done["recipe"]["control"]
    said = (control["mode"], control["strength"], control["start"], control["end"])
    assert said == ("canny", 1.2, 0.0, 0.8)
    assert len(control["image"]) == 64 and len(control["map"]) == 64


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"control_mode": "lineart"}, "No lineart ControlNet is configured for SD 1.5 models here"),
        ({"control_strength": "5"}, "Control strength must be between 0 and 2"),
        ({"control_start": "0.9", "control_end": "0.1"}, "Control start and end are fractions"),
    ],
)
async def test_bad_control_is_refused_in_words_and_nothing_queued(
    api: ApiServer, keys: ApiKeys, api_deployment: Deployment, data: dict[str, str], words: str
) -> None:
    minted = await keys.mint(DORA, "control refusals")
    before, queued = generation_count(api_deployment), queued_jobs(api_deployment)
    async with client(api, minted) as http:
        answer: httpx.Response = await http.post(
            "/v1/control",
            files={"image": ("d.png", drawing(), "image/png")},
            data={"prompt": "a cat", **data},
        )
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["detail"], answer.text
    assert generation_count(api_deployment) == before and queued_jobs(api_deployment) == queued
