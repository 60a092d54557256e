"""A forgotten person's API results are gone: their generation and image URLs answer 404."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from studio.artifacts import Artifacts
from studio.entities import Requester
from studio.removal import Removal
from studio.store import Store
from tests.api.conftest import open_keys
from tests.api.server import ApiServer
from tests.api.test_api import client, until_done
from tests.integration.workers import Deployment

DANA = Requester(id="discord:2001", name="dana", server="guild-1")


@pytest.fixture(scope="module")
def removal_deployment(
    tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    dep = Deployment(data_dir=tmp_path_factory.mktemp("api-removal"), models_file=tiny_catalogue)
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def api(removal_deployment: Deployment) -> AsyncIterator[ApiServer]:
    server = ApiServer(
        removal_deployment, {"ATELIER_API_RATE_PER_MINUTE": "600", "ATELIER_API_RATE_BURST": "40"}
    )
    server.start()
    try:
        await server.wait_ready()
        await removal_deployment.wait_ready()
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


async def test_forgotten_results_are_gone_from_the_api(api: ApiServer) -> None:
    async for keys in open_keys(api.deployment):
        key = await keys.mint(DANA, "tests")
    async with client(api, key) as http:
        started = await http.post("/v1/generations", json={"prompt": "a paper boat --seed 4", "steps": 1})
        assert started.status_code == 202, started.text
        done = await until_done(http, started.json()["id"])
        image_url = done["images"][0]["url"]
        assert (await http.get(image_url)).status_code == 200

        settings = api.deployment.settings()
        async with Store(settings.database_path) as store:
            removal = Removal(store, Artifacts(settings.artifacts_dir))
            erased = await removal.forget(await removal.prepare_forget(DANA, "all"))
        assert erased.images == 1 and erased.files >= 1

        for url in (f"/v1/generations/{done['id']}", image_url, done["images"][0]["recipe_url"]):
            answer = await http.get(url)
            assert answer.status_code == 404, (url, answer.text)
        listed = await http.get("/v1/generations")
        assert listed.status_code == 200 and done["id"] not in listed.text
