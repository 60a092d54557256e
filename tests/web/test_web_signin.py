"""Sign in with Discord, end to end over real HTTP: the web studio (`atelier api`) and the fake
Discord's OAuth2 (authorize, consent, token exchange, /users/@me and /users/@me/guilds)."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from studio.store import Store
from tests.api.server import ApiServer
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment
from tests.web.conftest import signing_in_through


@pytest.fixture(scope="module")
async def discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    await fake.add_guild("Bot-less Guild", members=["alice"], bot=False)  # alice's, not the bot's
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
async def studio(
    discord: FakeDiscord, tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiServer]:
    dep = Deployment(data_dir=tmp_path_factory.mktemp("web-signin"), models_file=tiny_catalogue)
    server = signing_in_through(discord, ApiServer(dep))
    server.start()
    try:
        await server.wait_ready()
        async with Store(dep.settings().database_path) as store:  # as the bot records it on ready
            await store.web.set_bot_guilds(
                {str(g.id): g.name for g in discord.guilds.values() if g.has_member(discord.bot_user_id)}
            )
        yield server
    finally:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe: keep cookies set by an IP address, as a browser does; redirects are stepped by hand.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def consent(browser: aiohttp.ClientSession, url: str, action: str) -> str:
    """Open Discord's consent page and press a button; the Location it sends the browser to."""
    async with browser.get(url, allow_redirects=False) as page:
        assert page.status == 200, await page.text()
        text = await page.text()
    fields = {
        html.unescape(k): html.unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', text)
    }
    fields = {k: v for k, v in fields.items() if k != "action"} | {"action": action}
    async with browser.post(url.split("?")[0], data=fields, allow_redirects=False) as answer:
        assert answer.status == 302
        return answer.headers["Location"]


async def test_sign_in_with_discord_shows_only_servers_shared_with_the_bot(
    discord: FakeDiscord, studio: ApiServer, browser: aiohttp.ClientSession
) -> None:
    await browser.get(discord.oauth_sign_in_url("alice"))
    gallery = f"/s/{discord.guild_id}"
    async with browser.get(f"{studio.url}{gallery}", allow_redirects=False) as first:
        assert first.status == 303 and first.headers["Location"].startswith("/login?next=")
    async with browser.get(f"{studio.url}{first.headers['Location']}", allow_redirects=False) as login:
        assert login.status == 303
        to_discord = login.headers["Location"]
    assert to_discord.startswith(discord.oauth_authorize_url)
    callback = await consent(browser, to_discord, "authorize")
    assert callback.startswith(f"{studio.url}/auth/callback?code=")
    async with browser.get(callback, allow_redirects=False) as back:
        assert back.status == 303, await back.text()
        assert back.headers["Location"] == gallery
        session = next(c for c in back.headers.getall("Set-Cookie") if c.startswith("atelier_session="))
        assert "HttpOnly" in session and "SameSite=lax" in session
    async with browser.get(f"{studio.url}/") as home:
        text = await home.text()
    second_guild = next(g for g in discord.guilds.values() if g.name == "Bot-less Guild")
    assert f"/s/{discord.guild_id}/gallery" in text
    assert str(second_guild.id) not in text  # she is in it, the bot is not
    async with browser.get(f"{studio.url}/s/{second_guild.id}", allow_redirects=False) as hidden:
        assert hidden.status == 404
    # The code works once: the same callback again is refused (and its state cookie is gone).
    async with browser.get(callback, allow_redirects=False) as replay:
        assert replay.status == 400
    discord.assert_clean()


async def test_cancelling_on_discord_signs_nobody_in(
    discord: FakeDiscord, studio: ApiServer, browser: aiohttp.ClientSession
) -> None:
    await browser.get(discord.oauth_sign_in_url("bob"))
    async with browser.get(f"{studio.url}/login", allow_redirects=False) as login:
        to_discord = login.headers["Location"]
    callback = await consent(browser, to_discord, "cancel")
    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]
    async with browser.get(callback, allow_redirects=False) as back:
        assert back.status == 400
        assert "cancelled" in await back.text()
        assert not any(c.startswith("atelier_session=") for c in back.headers.getall("Set-Cookie", []))
    discord.assert_clean()
