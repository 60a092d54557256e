"""The fake Discord's OAuth2 ("Sign in with Discord"), driven over real HTTP like a browser and a web app.

No bot process: each test has its own fake, a browser-like client (cookies kept, redirects not
followed, so each 302 is looked at) and the redirect URI of a web app that is never called.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest

from tests.fake_discord import FakeDiscord
from tests.fake_discord.oauth import ACCESS_TOKEN_LIFETIME, CODE_LIFETIME

CALLBACK = "http://127.0.0.1:9/auth/callback"  # the web app's; only ever seen in Location headers
STATE = "s/1 ?&=é"  # must come back verbatim


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    server.oauth_redirect_uris.add(CALLBACK)
    yield server
    await server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe: keep cookies set by an IP address (the fake is 127.0.0.1), as a browser does.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def ask(fake: FakeDiscord, **override: str | None) -> str:
    """The authorize URL a web app sends the browser to (``None`` leaves a field out)."""
    base: dict[str, str | None] = {
        "client_id": fake.client_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "identify guilds",
        "state": STATE,
    }
    query = base | override
    return fake.oauth_authorize_url + "?" + urlencode({k: v for k, v in query.items() if v is not None})


def back_at_callback(response: aiohttp.ClientResponse) -> dict[str, str]:
    """The query of a 302 to the web app's callback (AssertionError if it goes anywhere else)."""
    assert response.status == 302, response.status
    location = response.headers["Location"]
    assert location.startswith(CALLBACK + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def consent_form(browser: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """Open the consent page; the form's hidden fields."""
    async with browser.get(url, allow_redirects=False) as page:
        text = await page.text()
        assert page.status == 200 and page.content_type == "text/html", (page.status, text)
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', text)
    return {html.unescape(k): html.unescape(v) for k, v in fields}


async def sign_in(browser: aiohttp.ClientSession, fake: FakeDiscord, user: str) -> None:
    async with browser.get(fake.oauth_sign_in_url(user)) as signed:
        assert signed.status == 200


async def authorize(
    browser: aiohttp.ClientSession, fake: FakeDiscord, user: str = "alice", scope: str = "identify guilds"
) -> str:
    """Sign in as ``user``, consent, and return the code the callback got."""
    await sign_in(browser, fake, user)
    form = await consent_form(browser, ask(fake, scope=scope))
    async with browser.post(
        fake.oauth_authorize_url, data=form | {"action": "authorize"}, allow_redirects=False
    ) as r:
        query = back_at_callback(r)
    assert query["state"] == STATE
    return query["code"]


async def token(
    http: aiohttp.ClientSession,
    fake: FakeDiscord,
    form: dict[str, str],
    *,
    secret: str | None = None,
    basic: bool = True,
) -> tuple[int, dict[str, Any]]:
    """POST the token URL as the web app does (HTTP Basic unless ``basic`` is False)."""
    basic_auth = aiohttp.encode_basic_auth(fake.client_id, secret or fake.client_secret)
    headers = {"Authorization": basic_auth} if basic else {}
    async with http.post(fake.oauth_token_url, data=form, headers=headers) as answer:
        return answer.status, await answer.json()


def client_auth(fake: FakeDiscord) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(fake.client_id, fake.client_secret)}


async def exchange(http: aiohttp.ClientSession, fake: FakeDiscord, code: str) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    status, body = await token(http, fake, form)
    assert status == 200, body
    return body


async def api(
    http: aiohttp.ClientSession, fake: FakeDiscord, path: str, authorization: str | None
) -> tuple[int, Any]:
    headers = {"Authorization": authorization} if authorization else {}
    async with http.get(fake.api_base + path, headers=headers) as answer:
        return answer.status, await answer.json()


async def test_sign_in_gives_the_user_and_all_their_guilds_including_those_without_the_bot(
    fake: FakeDiscord, browser: aiohttp.ClientSession
) -> None:
    elsewhere = await fake.add_guild("Elsewhere", members=["alice"], bot=False)
    await sign_in(browser, fake, "alice")
    async with browser.get(ask(fake)) as page:
        text = await page.text()
    assert "Atelier wants to access your account" in text and "Alice" in text and "@alice" in text
    assert 'data-scope="identify"' in text and 'data-scope="guilds"' in text
    assert 'value="authorize">Authorize</button>' in text and 'value="cancel">Cancel</button>' in text

    form = await consent_form(browser, ask(fake))
    assert form["state"] == STATE and form["redirect_uri"] == CALLBACK
    async with browser.post(
        fake.oauth_authorize_url, data=form | {"action": "authorize"}, allow_redirects=False
    ) as r:
        query = back_at_callback(r)
    assert query["state"] == STATE and set(query) == {"code", "state"}

    granted = await exchange(browser, fake, query["code"])
    assert granted["token_type"] == "Bearer" and granted["expires_in"] == 604800
    assert granted["scope"] == "identify guilds" and granted["access_token"] and granted["refresh_token"]
    bearer = f"Bearer {granted['access_token']}"

    status, me = await api(browser, fake, "/users/@me", bearer)
    assert status == 200
    assert me["id"] == str(fake.user_id("alice")) and me["username"] == "alice"
    assert me["global_name"] == "Alice" and me["discriminator"] == "0" and me["avatar"] is None
    assert "bot" not in me and "email" not in me

    status, guilds = await api(browser, fake, "/users/@me/guilds", bearer)
    assert status == 200
    assert {g["name"] for g in guilds} == {"Fake Guild", "Elsewhere"}
    for g in guilds:
        assert set(g) >= {"id", "name", "icon", "owner", "permissions", "features"}
        assert isinstance(g["permissions"], str) and int(g["permissions"]) > 0 and g["owner"] is False
    # The bot's own list (bot token) lacks the guild it is not in: the web app must intersect.
    status, bot_guilds = await api(browser, fake, "/users/@me/guilds", f"Bot {fake.token}")
    assert status == 200 and str(elsewhere.id) not in {g["id"] for g in bot_guilds}
    assert str(fake.guild_id) in {g["id"] for g in bot_guilds}
    fake.assert_clean()


async def test_moderator_permissions_are_the_members_own(
    fake: FakeDiscord, browser: aiohttp.ClientSession
) -> None:
    granted = await exchange(browser, fake, await authorize(browser, fake, "mod"))
    status, guilds = await api(browser, fake, "/users/@me/guilds", f"Bearer {granted['access_token']}")
    assert status == 200
    assert [int(g["permissions"]) for g in guilds] == [fake.member_permissions(fake.user_id("mod"))]
    assert int(guilds[0]["permissions"]) & (1 << 13)  # Manage Messages, from the Moderator role
    fake.assert_clean()


async def test_an_unknown_client_or_unregistered_redirect_uri_gets_a_page_never_a_redirect(
    fake: FakeDiscord, browser: aiohttp.ClientSession
) -> None:
    await sign_in(browser, fake, "alice")
    cases = [
        ("unknown client_id", ask(fake, client_id="123")),
        ("unknown client_id", ask(fake, client_id=None)),
        ("not registered", ask(fake, redirect_uri="http://127.0.0.1:9/evil")),
        ("not registered", ask(fake, redirect_uri=CALLBACK + "/")),  # exact match only
        ("not registered", ask(fake, redirect_uri=None)),
    ]
    for violation, url in cases:
        async with browser.get(url, allow_redirects=False) as page:
            assert page.status == 400 and "Location" not in page.headers
            assert page.content_type == "text/html"
        fake.expect_violation(violation)
    async with browser.get(ask(fake, redirect_uri="http://127.0.0.1:9/evil")) as page:
        assert "Invalid OAuth2 redirect_uri" in await page.text()
    fake.expect_violation("not registered")
    fake.assert_clean()


async def test_a_bad_response_type_or_scope_goes_back_to_the_registered_uri_with_an_error(
    fake: FakeDiscord, browser: aiohttp.ClientSession
) -> None:
    await sign_in(browser, fake, "alice")
    cases = [
        (ask(fake, response_type="token"), "unsupported_response_type", "response_type 'token'"),
        (ask(fake, response_type=None), "invalid_request", "response_type None"),
        (ask(fake, scope="identify identity"), "invalid_scope", "invalid scope"),
        (ask(fake, scope=None), "invalid_scope", "invalid scope"),
    ]
    for url, error, violation in cases:
        async with browser.get(url, allow_redirects=False) as r:
            query = back_at_callback(r)
        assert query["error"] == error and query["state"] == STATE and "code" not in query
        fake.expect_violation(violation)
    # A scope Discord has but the fake does not serve is the fake's limit: a page, not a redirect.
    async with browser.get(ask(fake, scope="identify connections"), allow_redirects=False) as page:
        assert page.status == 400 and "connections" in await page.text()
    fake.expect_violation("not served by the fake")
    fake.assert_clean()


async def test_nobody_signed_in_gets_the_sign_in_page_which_leads_back(
    fake: FakeDiscord, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(ask(fake), allow_redirects=False) as page:
        text = await page.text()
    assert page.status == 401 and "Sign in to Discord" in text
    link = re.search(rf'href="(/fake/sign-in/{fake.user_id("bob")}\?next=[^"]+)"', text)
    assert link is not None
    async with browser.get(fake.base_url + html.unescape(link.group(1)), allow_redirects=False) as signed:
        assert signed.status == 302
        back = urlsplit(signed.headers["Location"])
    assert back.path == "/oauth2/authorize" and parse_qs(back.query) == parse_qs(urlsplit(ask(fake)).query)
    async with browser.get(fake.base_url + signed.headers["Location"]) as consent:
        assert consent.status == 200 and "Bob" in await consent.text()
    fake.assert_clean()


async def test_cancel_sends_access_denied_back(fake: FakeDiscord, browser: aiohttp.ClientSession) -> None:
    await sign_in(browser, fake, "bob")
    form = await consent_form(browser, ask(fake))
    async with browser.post(
        fake.oauth_authorize_url, data=form | {"action": "cancel"}, allow_redirects=False
    ) as r:
        query = back_at_callback(r)
    assert query["error"] == "access_denied" and query["state"] == STATE and "code" not in query
    assert query["error_description"]
    assert not fake.oauth_grants
    fake.assert_clean()


async def test_the_token_url_enforces_the_client_the_code_and_the_redirect_uri(
    fake: FakeDiscord, browser: aiohttp.ClientSession
) -> None:
    code = await authorize(browser, fake)
    good = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}

    assert await token(browser, fake, good, secret="wrong") == (401, {"error": "invalid_client"})
    fake.expect_violation("wrong client credentials")
    in_body = good | {"client_id": fake.client_id, "client_secret": "wrong"}
    assert await token(browser, fake, in_body, basic=False) == (401, {"error": "invalid_client"})
    fake.expect_violation("wrong client credentials")
    async with browser.post(fake.oauth_token_url, json=good, headers=client_auth(fake)) as js:
        assert js.status == 400 and (await js.json())["error"] == "invalid_request"
    fake.expect_violation("application/x-www-form-urlencoded")
    status, body = await token(browser, fake, good | {"grant_type": "password"})
    assert status == 400 and body["error"] == "unsupported_grant_type"
    fake.expect_violation("grant_type 'password'")

    # Refused client credentials leave the code alone; another redirect_uri spends it.
    status, body = await token(browser, fake, good | {"redirect_uri": CALLBACK + "/other"})
    assert status == 400 and body["error"] == "invalid_grant"
    fake.expect_violation("the code was issued for")
    assert (await token(browser, fake, good))[1]["error"] == "invalid_grant"  # spent, no violation
    fake.assert_clean()

    # A code works once (client credentials in the body work too); a replay is refused.
    code = await authorize(browser, fake)
    in_body = {"client_id": fake.client_id, "client_secret": fake.client_secret}
    status, granted = await token(browser, fake, good | {"code": code} | in_body, basic=False)
    assert status == 200 and granted["access_token"]
    status, body = await token(browser, fake, good | {"code": code})
    assert (status, body) == (
        400,
        {"error": "invalid_grant", "error_description": 'Invalid "code" in request.'},
    )

    # Codes die young; never issued ones are the app's fault.
    code = await authorize(browser, fake)
    fake.advance_clock(CODE_LIFETIME + 1)
    assert (await token(browser, fake, good | {"code": code}))[0] == 400
    fake.assert_clean()
    assert (await token(browser, fake, good | {"code": "made-up"}))[0] == 400
    fake.expect_violation("never issued")
    fake.assert_clean()


async def test_bearer_tokens_and_the_bot_token_each_keep_to_their_routes(
    fake: FakeDiscord, browser: aiohttp.ClientSession
) -> None:
    granted = await exchange(browser, fake, await authorize(browser, fake, scope="identify"))
    bearer = f"Bearer {granted['access_token']}"
    unauthorized = {"message": "401: Unauthorized", "code": 0}

    # A Bearer token never works on the bot's routes.
    for path in (f"/guilds/{fake.guild_id}", f"/channels/{fake.channel_id}/messages", "/gateway/bot"):
        assert await api(browser, fake, path, bearer) == (401, unauthorized)
        fake.expect_violation("a Bearer token on a bot route")
    # The bot token on /users/@me is the bot; no token is refused; /oauth2/@me is Bearer-only.
    status, me = await api(browser, fake, "/users/@me", f"Bot {fake.token}")
    assert status == 200 and me["id"] == str(fake.bot_user_id) and me["bot"] is True
    assert (await api(browser, fake, "/users/@me", None))[0] == 401
    fake.expect_violation("missing or wrong bot token")
    assert await api(browser, fake, "/oauth2/@me", f"Bot {fake.token}") == (401, unauthorized)
    fake.expect_violation("not a Bearer token on an OAuth2 route")

    # Scopes: this token has identify only.
    status, me = await api(browser, fake, "/users/@me", bearer)
    assert status == 200 and me["username"] == "alice"
    status, info = await api(browser, fake, "/oauth2/@me", bearer)
    assert status == 200 and info["scopes"] == ["identify"] and info["user"]["id"] == me["id"]
    assert await api(browser, fake, "/users/@me/guilds", bearer) == (
        403,
        {"message": "Missing Access", "code": 50001},
    )
    fake.expect_violation("lacks the 'guilds' scope")

    assert await api(browser, fake, "/users/@me", "Bearer not-a-token") == (401, unauthorized)
    fake.expect_violation("unknown Bearer token")
    fake.advance_clock(ACCESS_TOKEN_LIFETIME)
    assert await api(browser, fake, "/users/@me", bearer) == (401, unauthorized)
    fake.expect_violation("expired Bearer token")
    fake.assert_clean()


async def test_refresh_revoke_deauthorize_and_prompt_none(
    fake: FakeDiscord, browser: aiohttp.ClientSession
) -> None:
    first = await exchange(browser, fake, await authorize(browser, fake))
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    status, second = await token(browser, fake, refresh)
    assert status == 200 and second["access_token"] != first["access_token"]
    assert second["scope"] == "identify guilds"
    assert (await token(browser, fake, refresh))[1]["error"] == "invalid_grant"  # it rotated
    fake.expect_violation("already used")

    # Already authorized: prompt=none skips the consent page.
    async with browser.get(ask(fake, prompt="none"), allow_redirects=False) as r:
        code = back_at_callback(r)["code"]
    third = await exchange(browser, fake, code)

    # The app revokes (signing out): every token of the authorization dies, and using one is its bug.
    async with browser.post(
        fake.oauth_token_url + "/revoke",
        data={"token": third["access_token"], "token_type_hint": "access_token"},
        headers=client_auth(fake),
    ) as revoked:
        assert revoked.status == 200
    for grant in (first, second, third):
        assert (await api(browser, fake, "/users/@me", f"Bearer {grant['access_token']}"))[0] == 401
        fake.expect_violation("the app revoked")
    fake.assert_clean()

    # The user removes the app in Discord: a 401 the app could not foresee, and consent again.
    async with browser.get(ask(fake, prompt="none"), allow_redirects=False) as page:
        assert page.status == 200  # revoked: the consent page again
    fourth = await exchange(browser, fake, await authorize(browser, fake))
    fake.deauthorize("alice")
    assert (await api(browser, fake, "/users/@me", f"Bearer {fourth['access_token']}"))[0] == 401
    async with browser.get(ask(fake, prompt="none"), allow_redirects=False) as page:
        assert page.status == 200
    fake.assert_clean()
