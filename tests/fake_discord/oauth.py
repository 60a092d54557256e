"""OAuth2 in the fake: "Sign in with Discord" (authorization code grant) and the Bearer-token routes.

The bot's application is the OAuth2 client: its ``client_id`` is ``fake.client_id`` (the
application id as a string), its secret ``fake.client_secret`` and its registered redirect URIs
``fake.oauth_redirect_uris`` (a set the test adds to). Who is signed in to "Discord" in a browser
is a cookie set by ``GET /fake/sign-in/{user}`` (an id or a name such as ``alice``;
``fake.oauth_sign_in_url(user)``). Then, as https://discord.com/developers/docs/topics/oauth2 says:

- ``GET /oauth2/authorize`` (``fake.oauth_authorize_url``, on the web root as discord.com/oauth2/
  authorize is, not under /api/v10): an unknown ``client_id`` or a ``redirect_uri`` that is not
  registered (exact match) gets an error page (400) and is never redirected to; a missing or
  other ``response_type`` and an unknown or empty ``scope`` are sent back to the (registered)
  redirect URI as ``error=invalid_request|unsupported_response_type|invalid_scope`` with
  ``state``, as Discord does. Scopes Discord knows but the fake does not serve (only ``identify``,
  ``email``, ``guilds``) get an error page. Nobody signed in: a "sign in to Discord" page (401).
  Else the consent page: the app's name, the scopes, the user, and a form POSTing the same
  fields back with ``action=authorize`` or ``action=cancel``. ``prompt=none`` skips the page when
  the user already authorized these scopes (else the page is shown, as Discord does).
- ``POST /oauth2/authorize``: Authorize mints a one-time code (bound to the client, redirect URI,
  scopes and user; dead after ``CODE_LIFETIME``) and answers 302 to ``redirect_uri?code=..&state=..``;
  Cancel answers 302 with ``error=access_denied``.
- ``POST /api/v10/oauth2/token`` (``fake.oauth_token_url``; form-urlencoded only; client auth by HTTP Basic or
  ``client_id`` + ``client_secret`` in the body, not both): ``authorization_code`` (the code once,
  with the same ``redirect_uri``) and ``refresh_token`` (the refresh token once: it rotates).
  Errors are OAuth2's ``{"error": ...}``: 401 ``invalid_client``, 400 ``invalid_grant``,
  ``invalid_request``, ``unsupported_grant_type``. ``POST /api/v10/oauth2/token/revoke`` revokes
  the whole authorization.
- Bearer routes (``Route.bearer``: the server matches them only for ``Authorization: Bearer``, and
  a Bearer token on a bot route is a 401): ``GET /users/@me`` (``identify``), ``GET
  /users/@me/guilds`` (``guilds``: every guild the user is in, the bot's or not, as partial guilds)
  and ``GET /oauth2/@me``. A bad, expired or revoked token is 401 ``{"message": "401:
  Unauthorized", "code": 0}``, a missing scope 403 50001 "Missing Access". With the bot token,
  ``/users/@me/guilds`` lists the bot's guilds, as Discord does.

What only the app can get wrong is recorded in ``fake.violations`` (a wrong secret, an unregistered
redirect URI, a code exchanged with another redirect URI, an expired token used, ...); what a
person can cause (a replayed callback URL: a used or expired code; a token the user revoked with
``fake.deauthorize``) is answered the same way but is not a violation. ``fake.oauth_grants``
lists every token issued. Browsers must keep cookies set by 127.0.0.1 (aiohttp:
``CookieJar(unsafe=True)``); cookies ignore ports, so a web app on 127.0.0.1 also receives
``fake_discord_user`` and must name its own cookies otherwise.

Evidence for the less documented figures: codes "are one time use and expire 100 seconds after
creation" (a Discord engineer, discord-api-docs issue 2526); the error texts are those Discord
answers in public reports (``Invalid "code" in request.``, ``The requested scope is invalid,
unknown, or malformed.``, "Invalid OAuth2 redirect_uri").
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from tests.fake_discord.routing import Req, Route, json_response, route
from tests.fake_discord.rules import DiscordError
from tests.fake_discord.state import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    GuildRecord,
    RequestLog,
    UserRecord,
    iso,
)
from tests.fake_discord.world import World

AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATH = "/oauth2/token"  # under /api/v10
SIGN_IN_COOKIE = "fake_discord_user"
CODE_LIFETIME = 100.0  # seconds (see the module docstring)
ACCESS_TOKEN_LIFETIME = 604800  # seconds: Discord's expires_in, 7 days
MAX_GUILDS = 200  # /users/@me/guilds: the default and largest limit

# Every scope Discord documents (an unknown one is invalid_scope), and those the fake serves.
DISCORD_SCOPES = frozenset(
    """activities.read activities.write applications.builds.read applications.builds.upload
    applications.commands applications.commands.update applications.commands.permissions.update
    applications.entitlements applications.store.update bot connections dm_channels.read email
    gdm.join guilds guilds.join guilds.members.read identify messages.read relationships.read
    role_connections.write rpc rpc.activities.write rpc.notifications.read rpc.voice.read
    rpc.voice.write voice webhook.incoming""".split()
)
SERVED_SCOPES = {
    "identify": "Access your username, avatar, and banner",
    "email": "Access your email address",
    "guilds": "Know what servers you're in",
}
ACCESS_DENIED = "The resource owner or authorization server denied the request"
INVALID_SCOPE = "The requested scope is invalid, unknown, or malformed."


@dataclass(eq=False)
class OAuthCode:
    """An authorization code: one exchange, by its client, with its redirect URI, before it expires."""

    code: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    user_id: int
    expires_at: float  # the fake's wall clock
    used: bool = False


@dataclass(eq=False)
class OAuthGrant:
    """An access token and its refresh token (a refresh makes a new grant and retires this
    refresh token). ``revoked_by``: "app" (the revoke URL) or "user" (``fake.deauthorize``)."""

    access_token: str
    refresh_token: str
    client_id: str
    user_id: int
    scopes: tuple[str, ...]
    expires_at: float
    refreshed: bool = False
    revoked_by: str | None = None

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


@dataclass
class _Ask:
    """A valid authorization request."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    prompt: str | None
    fields: dict[str, str] = field(default_factory=dict)  # echoed by the consent form


class _Refused(Exception):
    """The token URL's OAuth2 error answer (``{"error": ..., "error_description": ...}``)."""

    def __init__(self, status: int, error: str, description: str = "", *, violation: str = "") -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description
        self.violation = violation


class OAuth:
    """The authorize pages, the token URL and the Bearer routes, over the one world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.codes: dict[str, OAuthCode] = {}
        self.grants: list[OAuthGrant] = []  # every token issued, oldest first
        self._by_access: dict[str, OAuthGrant] = {}
        self._by_refresh: dict[str, OAuthGrant] = {}
        # (user id, client id) -> the scopes the user has authorized (prompt=none skips consent).
        self.authorized: dict[tuple[int, str], set[str]] = {}

    @property
    def client_id(self) -> str:
        return str(self.world.application_id)

    def mount(self, app: web.Application) -> None:
        """The browser's pages (outside /api/v10; mount before the fake's catch-all route)."""
        app.router.add_get(AUTHORIZE_PATH, self._authorize_page)
        app.router.add_post(AUTHORIZE_PATH, self._authorize_answer)
        app.router.add_get("/fake/sign-in/{user}", self._sign_in)
        app.router.add_get("/fake/sign-out", self._sign_out)

    def routes(self) -> list[Route]:
        # Exempt from the bot's global limit: these count against the user's (or the IP's).
        return [
            route("POST", TOKEN_PATH, self._h_token, auth=False, exempt=True),
            route("POST", TOKEN_PATH + "/revoke", self._h_revoke, auth=False, exempt=True),
            route("GET", r"/users/@me", self._h_me, bearer=True, exempt=True),
            route("GET", r"/users/@me/guilds", self._h_my_guilds, bearer=True, exempt=True),
            route("GET", r"/oauth2/@me", self._h_authorization, bearer=True, exempt=True),
            route("GET", r"/users/@me/guilds", self._h_bot_guilds),
        ]

    # --- what a test does ---

    def sign_in_url(self, user: str | int) -> str:
        """Open this in the browser to be signed in to the fake Discord as ``user``."""
        return f"{self.world.base_url}/fake/sign-in/{self.world.user_id(user)}"

    def deauthorize(self, user: str | int) -> None:
        """The user removes the app under Settings > Authorized Apps: every token of theirs dies
        (a 401 that is not the app's fault) and the next sign-in asks for consent again."""
        uid = self.world.user_id(user)
        for grant in self.grants:
            if grant.user_id == uid and grant.revoked_by is None:
                grant.revoked_by = "user"
        for key in [k for k in self.authorized if k[0] == uid]:
            del self.authorized[key]

    # --- the browser's pages ---

    def _log(self, request: web.Request, status: int) -> None:
        self.world.requests.append(RequestLog(time.monotonic(), request.method, request.path, status))

    def _page(self, request: web.Request, status: int, title: str, body: str) -> web.Response:
        self._log(request, status)
        text = (
            f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
            # No favicon to fetch: a browser would otherwise ask for /favicon.ico, an unhandled route.
            '</title><link rel="icon" href="data:,"></head>\n'
            f"<body><main>\n<h1>{html.escape(title)}</h1>\n{body}\n</main></body></html>\n"
        )
        return web.Response(status=status, text=text, content_type="text/html")

    def _error_page(self, request: web.Request, message: str, violation: str) -> web.Response:
        self.world.record_violation(f"OAuth2 authorize: {violation}")
        return self._page(request, 400, "Discord", f"<p>{html.escape(message)}</p>")

    def _redirect(self, request: web.Request, uri: str, params: dict[str, str]) -> web.Response:
        self._log(request, 302)
        target = uri + ("&" if "?" in uri else "?") + urlencode(params)
        return web.Response(status=302, headers={"Location": target})

    def _signed_in(self, request: web.Request) -> UserRecord | None:
        raw = request.cookies.get(SIGN_IN_COOKIE, "")
        user = self.world.user_records.get(int(raw)) if raw.isdigit() else None
        return None if user is None or user.bot else user

    def _check(self, request: web.Request, q: Mapping[str, str]) -> _Ask | web.Response:
        """The request's fields, or the error page / error redirect Discord answers."""
        client_id, uri, state = q.get("client_id", ""), q.get("redirect_uri", ""), q.get("state")
        if client_id != self.client_id:
            return self._error_page(request, "Unknown Application", f"unknown client_id {client_id!r}")
        if uri not in self.world.oauth_redirect_uris:
            registered = sorted(self.world.oauth_redirect_uris)
            return self._error_page(
                request,
                "Invalid OAuth2 redirect_uri",
                f"redirect_uri {uri!r} is not registered ({registered})",
            )
        back = {"state": state} if state is not None else {}
        response_type = q.get("response_type")
        if response_type != "code":
            self.world.record_violation(f"OAuth2 authorize: response_type {response_type!r}, not 'code'")
            if response_type is None:
                error = {"error": "invalid_request", "error_description": "Missing response_type parameter."}
            else:
                error = {"error": "unsupported_response_type"}
            return self._redirect(request, uri, error | back)
        scopes = tuple(dict.fromkeys(q.get("scope", "").split()))
        unknown = [s for s in scopes if s not in DISCORD_SCOPES]
        if not scopes or unknown:
            self.world.record_violation(f"OAuth2 authorize: invalid scope {q.get('scope', '')!r}")
            return self._redirect(
                request, uri, {"error": "invalid_scope", "error_description": INVALID_SCOPE} | back
            )
        unserved = [s for s in scopes if s not in SERVED_SCOPES]
        if unserved:
            return self._error_page(
                request,
                f"The fake Discord does not implement the scopes {unserved}",
                f"scopes {unserved} are not served by the fake (only {sorted(SERVED_SCOPES)})",
            )
        fields = {
            k: q[k]
            for k in ("client_id", "redirect_uri", "response_type", "scope", "state", "prompt")
            if k in q
        }
        return _Ask(client_id, uri, scopes, state, q.get("prompt"), fields)

    def _consent(self, request: web.Request, ask: _Ask, user: UserRecord) -> web.Response:
        app_name = html.escape(self.world.bot_user.username)
        who = html.escape(user.global_name or user.username)
        items = "".join(
            f'<li data-scope="{html.escape(s)}">{html.escape(SERVED_SCOPES[s])}</li>' for s in ask.scopes
        )
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in ask.fields.items()
        )
        body = (
            f'<p>Signed in as <strong data-user-id="{user.id}">{who}</strong>'
            f" (@{html.escape(user.username)})</p>\n"
            f"<p>This will allow the developer of {app_name} to:</p>\n<ul>{items}</ul>\n"
            f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}\n'
            '<button type="submit" name="action" value="cancel">Cancel</button>\n'
            '<button type="submit" name="action" value="authorize">Authorize</button>\n</form>'
        )
        return self._page(request, 200, f"{self.world.bot_user.username} wants to access your account", body)

    def _sign_in_first(self, request: web.Request) -> web.Response:
        back = html.escape(request.raw_path, quote=True)
        links = "".join(
            f'<li><a href="/fake/sign-in/{uid}?next={quote(request.raw_path, safe="")}">'
            f"{html.escape(name)}</a></li>"
            for name, uid in self.world.users.items()
        )
        body = f"<p>Sign in to Discord to continue to <code>{back}</code>:</p>\n<ul>{links}</ul>"
        return self._page(request, 401, "Sign in to Discord", body)

    def _grant_code(self, request: web.Request, ask: _Ask, user: UserRecord) -> web.Response:
        code = OAuthCode(
            secrets.token_urlsafe(22),
            ask.client_id,
            ask.redirect_uri,
            ask.scopes,
            user.id,
            self.world.wall() + CODE_LIFETIME,
        )
        self.codes[code.code] = code
        self.authorized.setdefault((user.id, ask.client_id), set()).update(ask.scopes)
        back = {"state": ask.state} if ask.state is not None else {}
        return self._redirect(request, ask.redirect_uri, {"code": code.code} | back)

    async def _authorize_page(self, request: web.Request) -> web.StreamResponse:
        ask = self._check(request, request.query)
        if isinstance(ask, web.Response):
            return ask
        user = self._signed_in(request)
        if user is None:
            return self._sign_in_first(request)
        granted = self.authorized.get((user.id, ask.client_id), set())
        if ask.prompt == "none" and set(ask.scopes) <= granted:
            return self._grant_code(request, ask, user)
        return self._consent(request, ask, user)

    async def _authorize_answer(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        ask = self._check(request, fields)
        if isinstance(ask, web.Response):
            return ask
        user = self._signed_in(request)
        if user is None:
            return self._sign_in_first(request)
        action = fields.get("action")
        if action == "authorize":
            return self._grant_code(request, ask, user)
        if action == "cancel":
            back = {"state": ask.state} if ask.state is not None else {}
            denied = {"error": "access_denied", "error_description": ACCESS_DENIED}
            return self._redirect(request, ask.redirect_uri, denied | back)
        return self._page(request, 400, "Discord", f"<p>Unknown action {html.escape(str(action))}</p>")

    async def _sign_in(self, request: web.Request) -> web.StreamResponse:
        wanted = request.match_info["user"]
        try:
            uid = self.world.user_id(int(wanted) if wanted.isdigit() else wanted)
        except KeyError:
            return self._page(request, 404, "Unknown user", f"<p>No user {html.escape(wanted)}</p>")
        user = self.world.user_records[uid]
        nxt = request.query.get("next", "")
        if nxt.startswith("/") and not nxt.startswith("//"):
            self._log(request, 302)
            response: web.Response = web.Response(status=302, headers={"Location": nxt})
        else:
            name = html.escape(user.global_name or user.username)
            response = self._page(
                request, 200, "Signed in", f'<p data-user-id="{uid}">Signed in as {name}</p>'
            )
        response.set_cookie(SIGN_IN_COOKIE, str(uid), path="/", httponly=True, samesite="Lax")
        return response

    async def _sign_out(self, request: web.Request) -> web.StreamResponse:
        response = self._page(request, 200, "Signed out", "<p>Signed out of Discord</p>")
        response.del_cookie(SIGN_IN_COOKIE, path="/")
        return response

    # --- the token URL ---

    def _client(self, r: Req, form: dict[str, str]) -> str:
        """The authenticated client id (HTTP Basic, or client_id + client_secret in the body)."""
        header = r.headers.get("Authorization", "")
        in_body = "client_secret" in form
        if header.startswith("Basic "):
            if in_body:
                raise _Refused(
                    400, "invalid_request", violation="client credentials both in HTTP Basic and in the body"
                )
            try:
                client_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise _Refused(401, "invalid_client", violation="a malformed HTTP Basic header") from None
        elif header:
            raise _Refused(
                401,
                "invalid_client",
                violation=f"an Authorization header that is not Basic: {header[:12]!r}…",
            )
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if client_id != self.client_id or not secrets.compare_digest(
            secret.encode(), self.world.client_secret.encode()
        ):
            raise _Refused(
                401, "invalid_client", violation=f"wrong client credentials (client_id {client_id!r})"
            )
        return client_id

    async def _h_token(self, r: Req) -> web.StreamResponse:
        try:
            form = self._form(r)
            client_id = self._client(r, form)
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                grant = self._exchange_code(client_id, form)
            elif grant_type == "refresh_token":
                grant = self._refresh(client_id, form)
            else:
                raise _Refused(400, "unsupported_grant_type", violation=f"grant_type {grant_type!r}")
        except _Refused as refused:
            return self._refusal(r, refused)
        return json_response(
            {
                "access_token": grant.access_token,
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_LIFETIME,
                "refresh_token": grant.refresh_token,
                "scope": grant.scope,
            },
            headers={"Cache-Control": "no-store"},
        )

    def _form(self, r: Req) -> dict[str, str]:
        ctype = r.headers.get("Content-Type", "")
        if not ctype.startswith("application/x-www-form-urlencoded") or not isinstance(r.json, dict | None):
            raise _Refused(
                400,
                "invalid_request",
                violation=f"the token URL takes only application/x-www-form-urlencoded, not {ctype!r}",
            )
        return dict(r.json or {})

    def _refusal(self, r: Req, refused: _Refused) -> web.Response:
        if refused.violation:
            self.world.record_violation(
                f"{r.method} {r.path}: {refused.status} {refused.error} — {refused.violation}"
            )
        body = {"error": refused.error}
        if refused.description:
            body["error_description"] = refused.description
        return json_response(body, refused.status)

    def _exchange_code(self, client_id: str, form: dict[str, str]) -> OAuthGrant:
        bad_code = 'Invalid "code" in request.'
        code = self.codes.get(form.get("code", ""))
        if code is None:
            raise _Refused(400, "invalid_grant", bad_code, violation="a code the fake never issued")
        if code.used:
            raise _Refused(400, "invalid_grant", bad_code)  # a replayed callback: not the app's doing
        code.used = True  # one attempt, right or wrong
        if self.world.wall() >= code.expires_at:
            raise _Refused(400, "invalid_grant", bad_code)
        if code.client_id != client_id:
            raise _Refused(400, "invalid_grant", bad_code, violation="a code issued to another client")
        if form.get("redirect_uri") != code.redirect_uri:
            raise _Refused(
                400,
                "invalid_grant",
                'Invalid "redirect_uri" in request.',
                violation=f"redirect_uri {form.get('redirect_uri')!r}, "
                f"the code was issued for {code.redirect_uri!r}",
            )
        return self._issue(client_id, code.user_id, code.scopes)

    def _refresh(self, client_id: str, form: dict[str, str]) -> OAuthGrant:
        old = self._by_refresh.get(form.get("refresh_token", ""))
        if old is None or old.client_id != client_id:
            raise _Refused(400, "invalid_grant", violation="an unknown refresh token")
        if old.revoked_by == "user":
            raise _Refused(400, "invalid_grant")
        if old.refreshed or old.revoked_by:
            raise _Refused(400, "invalid_grant", violation="a refresh token already used or revoked")
        old.refreshed = True
        return self._issue(client_id, old.user_id, old.scopes)

    def _issue(self, client_id: str, user_id: int, scopes: tuple[str, ...]) -> OAuthGrant:
        grant = OAuthGrant(
            secrets.token_urlsafe(22),
            secrets.token_urlsafe(22),
            client_id,
            user_id,
            scopes,
            self.world.wall() + ACCESS_TOKEN_LIFETIME,
        )
        self.grants.append(grant)
        self._by_access[grant.access_token] = grant
        self._by_refresh[grant.refresh_token] = grant
        return grant

    async def _h_revoke(self, r: Req) -> web.StreamResponse:
        try:
            form = self._form(r)
            client_id = self._client(r, form)
        except _Refused as refused:
            return self._refusal(r, refused)
        token = form.get("token", "")
        found = self._by_access.get(token) or self._by_refresh.get(token)
        if found is not None and found.client_id == client_id:
            # Discord revokes every token of the authorization, whichever one was named.
            for grant in self.grants:
                same = grant.user_id == found.user_id and grant.client_id == client_id
                if same and grant.revoked_by is None:
                    grant.revoked_by = "app"
            self.authorized.pop((found.user_id, client_id), None)
        return json_response({})  # RFC 7009: 200 even for an unknown token

    # --- the Bearer routes ---

    def _bearer(self, r: Req, scope: str | None) -> OAuthGrant:
        """The live grant of the request's Bearer token, holding ``scope`` (None: any)."""
        token = r.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        grant = self._by_access.get(token)
        if grant is None:
            raise DiscordError(401, 0, "401: Unauthorized", detail="an unknown Bearer token")
        if grant.revoked_by == "user":
            raise DiscordError(401, 0, "401: Unauthorized", violation=False)
        if grant.revoked_by is not None:
            raise DiscordError(401, 0, "401: Unauthorized", detail="a Bearer token the app revoked")
        if self.world.wall() >= grant.expires_at:
            raise DiscordError(401, 0, "401: Unauthorized", detail="an expired Bearer token (refresh it)")
        if scope is not None and scope not in grant.scopes:
            raise DiscordError(403, 50001, "Missing Access", detail=f"the token lacks the {scope!r} scope")
        return grant

    async def _h_me(self, r: Req) -> web.StreamResponse:
        grant = self._bearer(r, "identify")
        data = self.world.user_records[grant.user_id].payload()
        data.pop("bot", None)  # only bot users carry it
        data |= {"mfa_enabled": False, "locale": "en-US", "premium_type": 0}
        if "email" in grant.scopes:
            data |= {"email": None, "verified": False}  # the fake's users have no e-mail address
        return json_response(data)

    async def _h_my_guilds(self, r: Req) -> web.StreamResponse:
        grant = self._bearer(r, "guilds")
        return json_response(self._partial_guilds(r, grant.user_id))

    async def _h_bot_guilds(self, r: Req) -> web.StreamResponse:
        return json_response(self._partial_guilds(r, self.world.bot_user.id))

    async def _h_authorization(self, r: Req) -> web.StreamResponse:
        grant = self._bearer(r, None)
        data: dict[str, Any] = {
            "application": {
                "id": self.client_id,
                "name": self.world.bot_user.username,
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
            },
            "scopes": list(grant.scopes),
            "expires": iso(grant.expires_at),
        }
        if "identify" in grant.scopes:
            data["user"] = self.world.user_records[grant.user_id].payload()
        return json_response(data)

    def _partial_guilds(self, r: Req, user_id: int) -> list[dict[str, Any]]:
        """Discord's "Get Current User Guilds": partial guilds by id, ``before``/``after``/``limit``."""
        try:
            limit = int(r.query.get("limit", MAX_GUILDS))
            before = int(r.query["before"]) if "before" in r.query else None
            after = int(r.query["after"]) if "after" in r.query else None
        except ValueError:
            raise DiscordError(
                400, 50035, "Invalid Form Body", detail="limit/before/after must be integers"
            ) from None
        if not 1 <= limit <= MAX_GUILDS:
            raise DiscordError(400, 50035, "Invalid Form Body", detail=f"limit {limit} is not 1-{MAX_GUILDS}")
        mine = [
            g
            for g in sorted(self.world.guilds.values(), key=lambda g: g.id)
            if (g.has_member(user_id) or g.owner_id == user_id)
            and (before is None or g.id < before)
            and (after is None or g.id > after)
        ]
        mine = mine[-limit:] if before is not None and after is None else mine[:limit]
        return [self._partial_guild(g, user_id, r.flag("with_counts")) for g in mine]

    def _partial_guild(self, guild: GuildRecord, user_id: int, with_counts: bool) -> dict[str, Any]:
        owner = guild.owner_id == user_id
        perms = ALL_PERMISSIONS if owner else self.world.member_permissions(user_id, guild.id)
        if perms & ADMINISTRATOR:
            perms = ALL_PERMISSIONS
        data: dict[str, Any] = {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "banner": None,
            "owner": owner,
            "permissions": str(perms),
            "features": [],
        }
        if with_counts:
            data |= {"approximate_member_count": len(guild.members), "approximate_presence_count": 0}
        return data
