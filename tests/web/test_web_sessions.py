"""Sessions, CSRF, redirects and headers of the web studio, over real HTTP to `atelier api`."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from tests.api.server import ApiServer
from tests.web.conftest import ALICE, OTHER_SERVER, SERVER, WEB_ENV, seed_images, sign_in


async def test_a_signed_in_person_sees_only_the_servers_they_share_with_the_bot(web_api: ApiServer) -> None:
    # Alice is in SERVER and OTHER_SERVER; the bot is in SERVER and a third she is not in.
    alice = await sign_in(web_api, ALICE, "Alice", servers=(SERVER, OTHER_SERVER))
    async with BotLeaves(web_api, OTHER_SERVER):
        page = await alice.http.get("/")
    assert page.status_code == 200
    assert f"/s/{SERVER}/gallery" in page.text
    assert f"/s/{OTHER_SERVER}/" not in page.text
    hidden = await alice.http.get(f"/s/{OTHER_SERVER}")
    assert hidden.status_code == 404 and "Sign out" in hidden.text  # still signed in on error pages
    assert (await alice.http.get(f"/s/{SERVER}")).headers["location"] == f"/s/{SERVER}/gallery"
    assert (await alice.http.get("/s/123456/gallery")).status_code in (404, 303)
    await alice.http.aclose()


class BotLeaves:
    """The bot leaves a server for the duration (as on_guild_remove records it)."""

    def __init__(self, api: ApiServer, server: str) -> None:
        self.api, self.server = api, server

    async def __aenter__(self) -> None:
        from studio.store import Store

        async with Store(self.api.deployment.settings().database_path) as store:
            await store.web.bot_left(self.server)

    async def __aexit__(self, *_: object) -> None:
        return None


async def test_a_forged_or_missing_session_is_not_signed_in(web_api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=web_api.url, cookies={"atelier_session": "forged-token"}) as http:
        home = await http.get("/")
        assert "Sign in with Discord" in home.text
        page = await http.get(f"/s/{SERVER}?x=1")
        assert page.status_code == 303
        assert page.headers["location"] == f"/login?next=%2Fs%2F{SERVER}%3Fx%3D1"


async def test_writes_without_the_csrf_token_are_refused(web_api: ApiServer) -> None:
    alice = await sign_in(web_api, ALICE, "Alice")
    refused = await alice.http.post("/logout", data={})
    assert refused.status_code == 403
    assert "reload the page" in refused.text
    wrong = await alice.http.post("/logout", data={"csrf_token": "not-it"})
    assert wrong.status_code == 403
    assert (await alice.http.get("/")).text.count("Sign out") == 1  # still signed in
    out = await alice.http.post("/logout", data={"csrf_token": alice.csrf})
    assert out.status_code == 303
    assert "atelier_session=" in out.headers["set-cookie"]
    alice.http.cookies.clear()
    await alice.http.aclose()


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "http:evil",
        "javascript:alert(1)",
        "gallery",
    ],
)
async def test_sign_in_never_redirects_off_the_site(web_api: ApiServer, target: str) -> None:
    async with httpx.AsyncClient(base_url=web_api.url) as http:
        answer = await http.get("/login", params={"next": target})
    assert answer.status_code == 400
    assert "location" not in answer.headers


async def test_sign_in_starts_at_discord_with_a_state_bound_to_this_browser(web_api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=web_api.url) as http:
        answer = await http.get("/login", params={"next": f"/s/{SERVER}/gallery"})
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert "scope=identify+guilds" in location and "response_type=code" in location
        state = re.search(r"state=([^&]+)", location)
        assert state is not None
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        # A callback with another state (a login CSRF) is refused before any token exchange.
        forged = await http.get("/auth/callback", params={"code": "c", "state": "someone-elses"})
        assert forged.status_code == 400
    async with httpx.AsyncClient(base_url=web_api.url) as fresh:  # no state cookie at all
        assert (
            await fresh.get("/auth/callback", params={"code": "c", "state": state.group(1)})
        ).status_code == 400


async def test_pages_carry_a_strict_csp_and_versioned_static_files(web_api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=web_api.url) as http:
        home = await http.get("/")
        csp = home.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "<script>" not in home.text and " style=" not in home.text and " onclick=" not in home.text
        css = re.search(r'href="(/static/[0-9a-f]{12}/app\.css)"', home.text)
        assert css is not None
        served = await http.get(css.group(1))
        assert served.status_code == 200 and "immutable" in served.headers["cache-control"]
        assert (await http.get("/static/000000000000/app.css")).headers["cache-control"] == "no-cache"
        api = await http.get("/v1/generations/x")  # the REST API keeps its JSON errors, no CSP
        assert api.headers["content-type"].startswith("application/json")
        assert "content-security-policy" not in api.headers


async def test_every_write_of_the_web_studio_needs_the_csrf_token(web_api: ApiServer) -> None:
    """Every write route of the web pages, found in their routers (so a new one is covered too)."""
    from web.app import ROUTERS

    writes = [
        route.path
        for module in ROUTERS
        for route in module.router.routes
        if isinstance(route, APIRoute) and route.methods & {"POST", "PUT", "PATCH", "DELETE"}
    ]
    assert len(writes) >= 4, writes
    image = (await seed_images(web_api.deployment, ALICE, 1))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    for path in writes:
        url = path.format(server_id=SERVER, generation_id=image.generation_id, index=0)
        assert (
            await alice.http.post(url, data={"prompt": "x", "on": "1", "edit": "z2"})
        ).status_code == 403, url
        forged = await alice.http.post(
            url,
            data={"csrf_token": "forged", "prompt": "x", "on": "1", "edit": "z2"},
            headers={"X-CSRF-Token": "forged"},
        )
        assert forged.status_code == 403, url
    await alice.http.aclose()


async def test_an_expired_session_is_not_signed_in(web_api: ApiServer) -> None:
    from studio.store import Store
    from studio.store.web import WebGuild
    from web.sessions import token_hash

    async with Store(web_api.deployment.settings().database_path) as store:
        await store.web.add_session(
            token_hash("old-token"), ALICE, "Alice", [WebGuild(SERVER, "S")], "c", -1.0
        )
    async with httpx.AsyncClient(base_url=web_api.url, cookies={"atelier_session": "old-token"}) as http:
        assert (await http.get(f"/s/{SERVER}")).status_code == 303
        assert "Sign in with Discord" in (await http.get("/")).text


async def test_cookies_are_secure_where_the_studio_is_served_over_https(web_api: ApiServer) -> None:
    secure = ApiServer(
        web_api.deployment, {**WEB_ENV, "ATELIER_API_PUBLIC_URL": "https://studio.example.test"}
    )
    secure.start()
    try:
        await secure.wait_ready()
        async with httpx.AsyncClient(base_url=secure.url) as http:
            login = await http.get("/login")
        assert login.headers["location"].startswith("https://discord.com/oauth2/authorize?")
        assert "redirect_uri=https%3A%2F%2Fstudio.example.test%2Fauth%2Fcallback" in login.headers["location"]
        cookie = login.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    finally:
        secure.stop()
    async with httpx.AsyncClient(base_url=web_api.url) as http:  # plain http (a local studio): not Secure
        assert "Secure" not in (await http.get("/login")).headers["set-cookie"]
