"""A fake Discord (REST under /api/v10, a gateway websocket, a tiny CDN) that enforces Discord's rules.

Point discord.py at it with two overrides::

    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)

Everything the bot does wrong is answered the way Discord answers it *and* recorded in
``fake.violations``; tests end with ``fake.assert_clean()``.

``FakeDiscord`` is the ``World`` (every record) with the aiohttp app on top: it mounts each
resource's routes (``guilds``, ``commands``, ``interactions``, ``channels``, ``threads``,
``reactions``, ``polls``, ``cdn``, ``gateway``, ``oauth``) and does what every REST call shares: holds,
rate limits, the bot token (or an OAuth2 Bearer token on ``oauth``'s routes), the application and guild
in the path, and Discord's error answers. ``oauth`` is "Sign in with Discord": the authorize pages,
the token URL and the Bearer routes (``/users/@me``, ``/users/@me/guilds``) a web app calls.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import unquote

from aiohttp import web

from tests.fake_discord import rules
from tests.fake_discord.cdn import Cdn
from tests.fake_discord.channels import Channels
from tests.fake_discord.commands import Commands
from tests.fake_discord.components import Components
from tests.fake_discord.gateway import Gateway, GatewaySession
from tests.fake_discord.guilds import GuildPayloads, Guilds
from tests.fake_discord.holds import Hold, Holds
from tests.fake_discord.interactions import Interactions
from tests.fake_discord.limits import RateLimited, RateLimits
from tests.fake_discord.messages import Messages
from tests.fake_discord.oauth import AUTHORIZE_PATH, TOKEN_PATH, OAuth
from tests.fake_discord.options import Picker
from tests.fake_discord.polls import Polls
from tests.fake_discord.reactions import Reactions
from tests.fake_discord.routing import API_PREFIX, Req, Route, json_response, read_body, redact
from tests.fake_discord.rules import DiscordError
from tests.fake_discord.state import PRIVILEGED_INTENTS, RequestLog
from tests.fake_discord.threads import Threads
from tests.fake_discord.world import World

T = TypeVar("T")


class FakeDiscord(World):
    """A local Discord for one bot application, a default guild ("Fake Guild") and three humans.

    Humans: ``alice``, ``bob`` and ``mod`` (who has the "Moderator" role with Manage Messages).
    The guild's owner is a fourth user that is not a member, so no test user has owner powers.
    ``guild_id``, ``channel_id``, ``roles`` and ``members`` are the default guild's; more guilds
    come from ``add_guild`` (see ``guilds``), and each guild has its own members, roles and
    channels: a user acts only where they are a member, the bot reads only where it is one.
    """

    def __init__(
        self,
        token: str = "test-token",
        attachment_size_limit: int = rules.DEFAULT_ATTACHMENT_SIZE_LIMIT,
        *,
        guild_upload_limit: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        allowed_intents: int = PRIVILEGED_INTENTS,
        cdn_url_ttl: float = 24 * 3600.0,
        client_secret: str = "test-client-secret",
    ) -> None:
        super().__init__(
            token,
            attachment_size_limit,
            guild_upload_limit=guild_upload_limit,
            host=host,
            port=port,
            allowed_intents=allowed_intents,
            cdn_url_ttl=cdn_url_ttl,
        )
        self.client_secret = client_secret  # the OAuth2 client's (client id: the application id)
        self._runner: web.AppRunner | None = None
        self._holds = Holds()
        self._limits = RateLimits(self)

        # The resources, each on the one world.
        payloads = GuildPayloads(self)
        self.gateway = Gateway(self, payloads)
        self._cdn = Cdn(self)
        guilds = Guilds(self, self.gateway, payloads)
        threads = Threads(self, self.gateway)
        messages = Messages(self, self.gateway, self._cdn, threads)
        channels = Channels(self, messages, threads)
        reactions = Reactions(self, self.gateway)
        polls = Polls(self, self.gateway, messages)
        interactions = Interactions(self, self.gateway, messages, self.describe)
        picker = Picker(self, self._cdn)
        commands = Commands(self, interactions, messages, picker)
        components = Components(self, interactions, picker)
        self._oauth = OAuth(self)
        self._routes: list[Route] = [
            *guilds.routes(),
            *commands.routes(),
            *interactions.routes(),
            *channels.routes(),
            *threads.routes(),
            *reactions.routes(),
            *polls.routes(),
            *self._oauth.routes(),
        ]

        # What a test does and asks, by resource (each is documented where it lives).
        self.add_user = guilds.add_user
        self.add_member = guilds.add_member
        self.add_role = guilds.add_role
        self.add_guild = guilds.add_guild
        self.add_channel = guilds.add_channel
        self.set_bot_permissions = guilds.set_bot_permissions
        self.send_user_message = channels.send_user_message
        self.message_payload = messages.payload
        self.bot_intents = messages.bot_intents
        self.channel_messages = messages.channel_messages
        self.bot_messages = messages.bot_messages
        self.pings_anyone = messages.pings_anyone
        self.pinged = messages.pinged
        self.jump_link = messages.jump_link
        self.can_open = messages.can_open
        self.links_in = messages.links_in
        self.react = reactions.react
        self.unreact = reactions.unreact
        self.vote = polls.vote  # a member votes in a poll (False once it ended)
        self.unvote = polls.unvote
        self.end_poll = polls.end_poll  # the poll's time is up: results and the poll-result message
        self.thread_members = threads.thread_members
        self.slash = commands.slash
        self.message_command = commands.message_command
        self.autocomplete = commands.autocomplete
        self.permit_command = commands.permit_command
        self.forget_command_permits = commands.forget_command_permits
        self.click = components.click
        self.select = components.select
        self.submit_modal = components.submit_modal
        self.inject_rate_limit = self._limits.inject_rate_limit
        self.enforce_rate_limits = self._limits.enforce  # per-route buckets + global 429s, opt-in
        # OAuth2 (see oauth.py): register a web app's callback in ``oauth_redirect_uris``.
        self.oauth_sign_in_url = self._oauth.sign_in_url  # the browser is signed in to Discord as a user
        self.deauthorize = self._oauth.deauthorize  # the user removes the app: their tokens die
        self.oauth_grants = self._oauth.grants  # every access token issued

    # --- lifecycle ---

    async def start(self) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/gateway", self.gateway.handle)
        self._cdn.mount(app)
        self._oauth.mount(app)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        app.router.add_route("*", "/{tail:.*}", self._unrouted)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def describe(self) -> str:
        """A short dump of recent state, for assertion messages."""
        recent = "\n    ".join(f"{r.method} {r.path} -> {r.status}" for r in self.requests[-15:])
        sessions = [s.id for s in self.gateway.live_sessions]
        return (
            f"live gateway sessions: {sessions}\n  recent requests:\n    {recent}\n"
            f"  violations: {self._violations}\n  notes: {self.log[-5:]}"
        )

    # --- waiting ---

    async def wait_for(
        self,
        predicate: Callable[[], T | bool | None] | Callable[[], Awaitable[T | bool | None]],
        timeout: float = 10.0,
        *,
        interval: float = 0.01,
        message: str | None = None,
    ) -> T:
        """Poll ``predicate`` until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value]
            if time.monotonic() >= deadline:
                what = message or getattr(predicate, "__name__", repr(predicate))
                raise AssertionError(f"wait_for timed out after {timeout} s: {what}\n  {self.describe()}")
            await asyncio.sleep(interval)

    async def wait_connected(self, timeout: float = 10.0) -> GatewaySession:
        """Wait until a client has identified and received READY + GUILD_CREATE."""

        def live() -> GatewaySession | None:
            sessions = self.gateway.live_sessions
            return sessions[-1] if sessions else None

        return await self.wait_for(live, timeout, message="no gateway client identified")

    async def wait_disconnected(self, timeout: float = 10.0) -> None:
        await self.wait_for(
            lambda: not self.gateway.live_sessions, timeout, message="a client is still connected"
        )

    async def disconnect_clients(self, code: int = 4000) -> None:
        """Drop every gateway socket (discord.py will reconnect and RESUME)."""
        await self.gateway.close_all(code=code, message=b"dropped by the test")

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every client."""
        await self.gateway.reconnect_all()

    @property
    def client_id(self) -> str:
        """The OAuth2 client id: the application id, as a string."""
        return str(self.application_id)

    @property
    def oauth_authorize_url(self) -> str:
        """Where a web app sends the browser to sign in (Discord's https://discord.com/oauth2/authorize)."""
        return self.base_url + AUTHORIZE_PATH

    @property
    def oauth_token_url(self) -> str:
        """Where a web app exchanges a code for a token (under /api/v10, as on Discord)."""
        return self.api_base + TOKEN_PATH

    @property
    def rate_limited(self) -> list[RateLimited]:
        """Every 429 answered by an enforced bucket or the global limit (not injected ones)."""
        return self._limits.answered

    def hold(self, method: str, path: str) -> Hold:
        """Hold the next ``method`` request whose path (after /api/v10) matches the regex ``path``
        until the test calls ``release()`` (see holds.py)."""
        return self._holds.add(method, path)

    # --- what every REST call shares ---

    async def _unrouted(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        self.record_violation(f"unhandled route {request.method} {path} (outside {API_PREFIX})")
        self.requests.append(RequestLog(time.monotonic(), request.method, path, 404))
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        method = request.method
        rel = request.rel_url.raw_path[len(API_PREFIX) :] or "/"
        status = 500
        try:
            response = await self._rest_inner(request, method, rel)
            status = response.status
            return response
        except DiscordError as err:
            status = err.status
            if err.violation:
                self.record_violation(
                    f"{method} {redact(rel)}: {err.status} {err.code} {err.message}"
                    + (f" — {err.detail}" if err.detail else "")
                )
            return json_response(err.body(), err.status)
        finally:
            self.requests.append(RequestLog(arrived, method, redact(rel), status))
            self._limits.count_invalid(status)

    def _match(self, method: str, rel: str, bearer: bool) -> tuple[Route | None, dict[str, str], bool, bool]:
        """The route for ``method rel`` called with a Bearer token or not, its path parameters,
        whether any route has that path, and whether one has it only for the other kind of token."""
        path_known = other_kind = False
        for candidate in self._routes:
            found = candidate.pattern.fullmatch(rel)
            if found is None:
                continue
            path_known = True
            if candidate.method != method:
                continue
            if candidate.bearer != bearer and (candidate.bearer or candidate.auth):
                other_kind = True
                continue
            return candidate, {k: unquote(v) for k, v in found.groupdict().items()}, True, False
        return None, {}, path_known, other_kind

    async def _rest_inner(self, request: web.Request, method: str, rel: str) -> web.StreamResponse:
        payload, files = await read_body(request)
        if await self._holds.check(method, rel):
            return web.Response(status=503, text="dropped by the test (held, then released with drop)")
        bearer = request.headers.get("Authorization", "").startswith("Bearer ")
        route, params, path_known, other_kind = self._match(method, rel, bearer)
        self._limits.count(route)
        injected = self._limits.injected(method, rel)
        if injected is not None:
            return injected
        limited = self._limits.limited(method, rel)
        if isinstance(limited, web.Response):
            return limited
        if route is None:
            if other_kind:
                why = "a Bearer token on a bot route" if bearer else "not a Bearer token on an OAuth2 route"
                raise DiscordError(401, 0, "401: Unauthorized", detail=why)
            if path_known:
                raise DiscordError(
                    405, 0, "405: Method Not Allowed", detail=f"unhandled route {method} {rel}"
                )
            raise DiscordError(404, 0, "404: Not Found", detail=f"unhandled route {method} {rel}")
        if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
            raise DiscordError(401, 0, "401: Unauthorized", detail="missing or wrong bot token")
        req = Req(method, rel, params, request.query, payload, files, request.headers)
        if "app_id" in params and int(params["app_id"]) != self.application_id:
            if route.webhook:
                raise DiscordError(404, 10015, "Unknown Webhook", detail="application id does not match")
            raise DiscordError(403, 50001, "Missing Access", detail="not this application")
        if "guild_id" in params:
            guild = self.guilds.get(int(params["guild_id"]))
            if guild is None:
                raise DiscordError(404, 10004, "Unknown Guild")
            if not guild.has_member(self.bot_user.id):
                raise DiscordError(403, 50001, "Missing Access", detail=f"the bot is not in {guild.name!r}")
        response = await route.handler(req)
        response.headers.update(limited)
        return response
