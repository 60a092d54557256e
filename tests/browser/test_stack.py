"""The browser tests' API stack: `atelier api` as a process, healthy, reached by the browser, stopped."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from playwright.async_api import Page

from tests.browser.stack import ApiProcess, running_api, sketch_catalogue
from tests.integration.workers import Deployment


async def test_the_browser_reaches_the_api_process_and_it_stops_cleanly(page: Page, tmp_path: Path) -> None:
    deployment = Deployment(data_dir=tmp_path / "studio", models_file=sketch_catalogue(tmp_path / "config"))

    async with running_api(deployment, {"ATELIER_API_RATE_PER_MINUTE": "600"}) as api:
        assert api.process is not None
        response = await page.goto(f"{api.url}/healthz")
        assert response is not None and response.status == 200
        assert (await page.text_content("body") or "").strip() == "ok"
        process = api.process

    assert process.poll() is not None  # gone after the block
    # SIGTERM was enough: the app shut down (uvicorn then re-raises the signal), nothing was killed.
    assert api.returncode in (0, -signal.SIGTERM), api.log()
    assert "Application shutdown complete" in api.log()


def test_the_environment_layers_the_tests_settings_over_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_CLIENT_SECRET", "from the developer's shell")
    deployment = Deployment(
        data_dir=tmp_path, models_file=tmp_path / "models.toml", extra_env={"ATELIER_MAX_JOBS_PER_USER": "3"}
    )
    api = ApiProcess(deployment, {"DISCORD_CLIENT_ID": "1234", "ATELIER_API_PORT": "1"})

    env = api.env()

    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["ATELIER_QUEUE_PREFIX"] == deployment.prefix  # the deployment's own isolation
    assert env["ATELIER_MAX_JOBS_PER_USER"] == "3"
    assert env["DISCORD_CLIENT_ID"] == "1234"
    assert "DISCORD_CLIENT_SECRET" not in env  # nothing Discord leaks in from the shell
    assert env["ATELIER_API_PORT"] == str(api.port)  # always where api.url points
    assert api.url == f"http://127.0.0.1:{api.port}"
