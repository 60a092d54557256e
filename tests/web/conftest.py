"""The web studio over real HTTP: `atelier api` as a process, a real worker, signed-in clients.

``sign_in`` makes a session row the way a finished Discord sign-in does (the OAuth flow itself
is tested in the browser tests against the fake Discord); ``seed_images`` records finished
generations with real PNGs in the artifact store, as the results follower would.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from studio.app import open_artifacts
from studio.entities import ImageRecord
from studio.recipe import Recipe
from studio.store import Store
from studio.store.connection import new_id
from studio.store.web import WebGuild
from tests.api.server import ApiServer
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment
from web.sessions import SESSION_TTL_S, token_hash

SERVER = "900000000000000001"
OTHER_SERVER = "900000000000000002"
ALICE = "discord:100000000000000001"
BOB = "discord:100000000000000002"
WEB_ENV = {"DISCORD_CLIENT_ID": "424242", "DISCORD_CLIENT_SECRET": "web-test-secret"}


@dataclass
class WebClient:
    """A browser-like client: the session cookie, and the CSRF token its pages carry."""

    http: httpx.AsyncClient
    csrf: str
    user_id: str


def signing_in_through(fake: FakeDiscord, server: ApiServer) -> ApiServer:
    """``server`` (not started yet) set to sign people in through the fake Discord's OAuth2, at
    its own address, which the fake registers as the application's redirect."""
    server.extra_env.update(
        DISCORD_CLIENT_ID=fake.client_id,
        DISCORD_CLIENT_SECRET=fake.client_secret,
        DISCORD_API_BASE=fake.api_base,
        DISCORD_OAUTH_URL=fake.oauth_authorize_url,
        ATELIER_API_PUBLIC_URL=server.url,
    )
    fake.oauth_redirect_uris.add(f"{server.url}/auth/callback")
    return server


@pytest.fixture(scope="module")
def web_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(data_dir=tmp_path_factory.mktemp("web"), models_file=tiny_catalogue)
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def web_api(web_deployment: Deployment) -> AsyncIterator[ApiServer]:
    server = ApiServer(web_deployment, dict(WEB_ENV))
    server.start()
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()


async def sign_in(
    api: ApiServer,
    user_id: str,
    name: str,
    servers: tuple[str, ...] = (SERVER,),
    bot_in: tuple[str, ...] = (),
) -> WebClient:
    """A session for ``user_id`` (a member of ``servers``); the bot is in ``servers`` + ``bot_in``."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with Store(api.deployment.settings().database_path) as store:
        await store.ensure_user(user_id, name)
        for server in (*servers, *bot_in):
            await store.web.bot_joined(server, f"Server {server[-1]}")
        guilds = [WebGuild(server, f"Server {server[-1]}", 0) for server in servers]
        await store.web.add_session(token_hash(token), user_id, name, guilds, csrf, SESSION_TTL_S)
    http = httpx.AsyncClient(base_url=api.url, cookies={"atelier_session": token}, timeout=30)
    return WebClient(http, csrf, user_id)


def png(width: int = 64, height: int = 64, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


async def seed_images(
    deployment: Deployment,
    owner_id: str,
    count: int,
    *,
    server: str | None = SERVER,
    private: bool = False,
    prompt: str = "a red fox in the snow",
    model: str = "tiny-sd15",
    project: str = "web tests",
    thread_id: str | None = None,
    parent: ImageRecord | None = None,
) -> list[ImageRecord]:
    """``count`` finished one-image generations of ``owner_id``, recorded with real PNG files
    (remixes of ``parent`` when given: its lineage)."""
    settings = deployment.settings()
    artifacts = open_artifacts(settings)
    made = []
    async with Store(settings.database_path) as store:
        await store.ensure_user(owner_id, owner_id.split(":")[-1])
        found = await store.project_by_name(owner_id, project)
        target = found or await store.create_project(owner_id, project, thread_id, server)
        for n in range(count):
            recipe = Recipe(
                model=model,
                family="sd15",
                prompt=f"{prompt} {n}",
                seed=n,
                steps=2,
                guidance=5.0,
                width=64,
                height=64,
                parent_image=parent.id if parent is not None else None,
            )
            generation_id = new_id()
            await store.add_generation(generation_id, target.id, owner_id, recipe, private, server)
            sha = artifacts.put(png(colour=(n * 37 % 256, 90, 160)))
            await store.finish_generation(generation_id, [(0, sha, recipe.for_image(0))], None, 0.1, 1)
            made.extend(await store.images_of(generation_id))
    return made
