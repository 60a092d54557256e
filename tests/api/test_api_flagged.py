"""Through the API (a real process; the safety classifier flags every image here): a flagged
image's file goes to its owner only; anyone else gets 403 with the reason, for the file and for
finishing it. A queued generation carries its ETA (studio.eta) next to its place in line."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from studio.entities import Requester
from tests.api.conftest import open_keys
from tests.api.server import ApiServer
from tests.api.test_api import client, until_done
from tests.e2e.test_bot_content_policy import flagging_catalogue
from tests.integration.workers import Deployment

DANA = Requester(id="discord:2101", name="dana", server="guild-1")
ERIN = Requester(id="discord:2102", name="erin", server="guild-1")


@pytest.fixture(scope="module")
def flagging_deployment(
    tiny_catalogue: Path, tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("api-flagged")
    models = flagging_catalogue(tiny_catalogue, tiny_models["tiny-safety"], folder)
    dep = Deployment(data_dir=folder / "studio", models_file=models)
    dep.data_dir.mkdir()
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def api(flagging_deployment: Deployment) -> AsyncIterator[ApiServer]:
    server = ApiServer(
        flagging_deployment, {"ATELIER_API_RATE_PER_MINUTE": "600", "ATELIER_API_RATE_BURST": "40"}
    )
    server.start()
    try:
        await server.wait_ready()
        await flagging_deployment.wait_ready()
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


async def test_a_flagged_image_is_served_to_its_owner_only_and_queued_jobs_carry_an_eta(
    api: ApiServer,
) -> None:
    async for keys in open_keys(api.deployment):
        dana, erin = await keys.mint(DANA, "tests"), await keys.mint(ERIN, "tests")
    async with client(api, dana) as mine, client(api, erin) as theirs:
        started = await mine.post("/v1/generations", json={"prompt": "a night market --seed 4", "steps": 1})
        assert started.status_code == 202, started.text
        done = await until_done(mine, started.json()["id"])
        assert done["status"] == "done" and done["eta_seconds"] is None
        (image,) = done["images"]
        assert image["flagged"] and image["public"]

        own = await mine.get(image["url"])
        assert own.status_code == 200 and own.headers["content-type"] == "image/png"
        refused = await theirs.get(image["url"])
        assert refused.status_code == 403, refused.text
        assert "flagged by its server's image safety check" in refused.json()["detail"]
        source = {"generation_id": done["id"], "index": 0, "factor": 2}
        upscale = await theirs.post("/v1/upscale", json=source)
        assert upscale.status_code == 403 and "safety check" in upscale.json()["detail"], upscale.text
        assert (await mine.post("/v1/upscale", json=source)).status_code == 201
        assert (await theirs.get(image["recipe_url"])).status_code == 200  # words, not the image

        # Behind a slow job (512x512, 150 steps: about 10 s here), a queued one has an estimate.
        slow = await mine.post(
            "/v1/generations", json={"prompt": "a long night --size 512x512", "steps": 150}
        )
        assert slow.status_code == 202, slow.text
        queued = await mine.post("/v1/generations", json={"prompt": "a short night", "steps": 1})
        assert queued.status_code == 202, queued.text
        waiting = (await mine.get(f"/v1/generations/{queued.json()['id']}")).json()
        assert waiting["status"] == "queued" and waiting["queue_position"] == 1, waiting
        assert waiting["eta_seconds"] is not None and waiting["eta_seconds"] > 0, waiting
