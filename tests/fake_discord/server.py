"""A fake Discord (REST under /api/v10, a gateway websocket, a tiny CDN) that enforces Discord's rules.

Point discord.py at it with two overrides::

    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)

Everything the bot does wrong is answered the way Discord answers it *and* recorded in
``fake.violations``; tests end with ``fake.assert_clean()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import inspect
import json
import mimetypes
import re
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web
from multidict import MultiMapping

from tests.fake_discord import rules
from tests.fake_discord.gateway import Gateway, GatewaySession
from tests.fake_discord.holds import Hold, Holds
from tests.fake_discord.rules import DiscordError, FormErrors
from tests.fake_discord.state import (
    ADD_REACTIONS,
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    BOT_PERMISSIONS,
    CREATE_PRIVATE_THREADS,
    CREATE_PUBLIC_THREADS,
    EVERYONE_PERMISSIONS,
    FLAG_EPHEMERAL,
    FLAG_HAS_THREAD,
    FLAG_LOADING,
    INTENT_GUILD_MEMBERS,
    INTENT_MESSAGE_CONTENT,
    MANAGE_MESSAGES,
    MANAGE_THREADS,
    MODERATOR_PERMISSIONS,
    PRIVILEGED_INTENTS,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    AttachmentRecord,
    CallbackRecord,
    ChannelRecord,
    GuildRecord,
    InteractionRecord,
    MemberRecord,
    MessageRecord,
    RateLimitInjection,
    RejectedCall,
    RequestLog,
    RoleRecord,
    Snowflakes,
    ThreadRecord,
    UserRecord,
    iso,
)

T = TypeVar("T")

API_PREFIX = "/api/v10"
APPLICATION_FLAGS = (1 << 15) | (1 << 19) | (1 << 23)  # members/message content limited, command badge

# Interaction type -> callback types Discord accepts for it.
CALLBACK_TYPES: dict[int, frozenset[int]] = {
    1: frozenset({1}),
    2: frozenset({4, 5, 9, 12}),
    3: frozenset({4, 5, 6, 7, 9}),
    4: frozenset({8}),
    5: frozenset({4, 5, 6, 7}),
}

OPTION_STRING, OPTION_INTEGER, OPTION_BOOLEAN, OPTION_USER = 3, 4, 5, 6
OPTION_CHANNEL, OPTION_ROLE, OPTION_MENTIONABLE, OPTION_NUMBER, OPTION_ATTACHMENT = 7, 8, 9, 10, 11

Handler = Callable[["_Req"], Awaitable[web.StreamResponse]]


@dataclass
class _Upload:
    index: int
    filename: str
    data: bytes
    content_type: str


@dataclass
class _Req:
    method: str
    path: str
    params: dict[str, str]
    query: MultiMapping[str]
    json: Any
    files: list[_Upload]
    headers: MultiMapping[str]

    def int(self, key: str) -> int:
        return int(self.params[key])

    def body(self) -> dict[str, Any]:
        if self.json is None:
            return {}
        if not isinstance(self.json, dict):
            raise DiscordError(400, 50035, "Invalid Form Body", detail="body must be a JSON object")
        return self.json

    def flag(self, key: str) -> bool:
        return self.query.get(key, "").lower() in ("1", "true")


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool
    exempt: bool = False  # not counted for the global 50 req/s limit (interaction endpoints)


@dataclass
class _OpenModal:
    """What a test helper needs from a pending modal (who opened it, and from where)."""

    interaction: InteractionRecord
    data: dict[str, Any]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py compares the header verbatim (no charset).
    all_headers = {"Content-Type": "application/json"}
    if headers:
        all_headers.update(headers)
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


def _no_content() -> web.Response:
    return web.Response(status=204)


class FakeDiscord:
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
    ) -> None:
        self.token = token
        self.attachment_size_limit = attachment_size_limit
        self.guild_upload_limit = attachment_size_limit if guild_upload_limit is None else guild_upload_limit
        self.allowed_intents = allowed_intents
        self.cdn_url_ttl = cdn_url_ttl
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._cdn_secret = secrets.token_bytes(16)
        self._clock_offset = 0.0
        self._ids = Snowflakes()
        self._bot_deny = 0

        # The world.
        self.application_id = self._ids.next()
        self.bot_user = UserRecord(self.application_id, "Atelier", "Atelier", bot=True, discriminator="4242")
        self.owner_user = UserRecord(self._ids.next(), "owner", "Guild Owner")
        self.guild_id = self._ids.next()
        self.guild_name = "Fake Guild"
        self.moderator_role_id = self._ids.next()
        self.bot_role_id = self._ids.next()
        self.artist_role_id = self._ids.next()  # a plain role, for features limited to some roles
        self.roles: dict[int, RoleRecord] = {
            self.guild_id: RoleRecord(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0),
            self.moderator_role_id: RoleRecord(
                self.moderator_role_id, "Moderator", MODERATOR_PERMISSIONS, position=1
            ),
            self.artist_role_id: RoleRecord(self.artist_role_id, "Artist", 0, position=1),
            self.bot_role_id: RoleRecord(
                self.bot_role_id,
                "Atelier",
                BOT_PERMISSIONS,
                position=2,
                managed=True,
                bot_id=self.bot_user.id,
            ),
        }
        self._users: dict[int, UserRecord] = {
            self.bot_user.id: self.bot_user,
            self.owner_user.id: self.owner_user,
        }
        self.users: dict[str, int] = {}
        self.members: dict[int, MemberRecord] = {
            self.bot_user.id: MemberRecord(self.bot_user, [self.bot_role_id])
        }
        for name, display, roles in (
            ("alice", "Alice", []),
            ("bob", "Bob", []),
            ("mod", "Mod", [self.moderator_role_id]),
        ):
            user = UserRecord(self._ids.next(), name, display)
            self._users[user.id] = user
            self.users[name] = user.id
            self.members[user.id] = MemberRecord(user, list(roles))
        self.channel_id = self._ids.next()
        self.channels: dict[int, ChannelRecord] = {
            self.channel_id: ChannelRecord(self.channel_id, self.guild_id, "general", type=0, position=0)
        }
        # The default guild's record shares the dicts above, so tests that change
        # ``fake.roles``/``fake.members`` change the guild the bot sees.
        self.guilds: dict[int, GuildRecord] = {
            self.guild_id: GuildRecord(
                self.guild_id,
                self.guild_name,
                self.owner_user.id,
                self.roles,
                self.members,
                [self.channel_id],
                bot_role_id=self.bot_role_id,
            )
        }
        self.threads: dict[int, ThreadRecord] = {}
        self.messages: dict[int, MessageRecord] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self._by_token: dict[str, InteractionRecord] = {}
        self._open_modals: dict[tuple[int, str], _OpenModal] = {}
        self._cdn: dict[tuple[int, int], AttachmentRecord] = {}

        # What the tests look at.
        self.requests: list[RequestLog] = []
        self._violations: list[str] = []
        self.log: list[str] = []
        self.commands: list[dict[str, Any]] = []
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.command_syncs: list[tuple[str, list[dict[str, Any]]]] = []
        # (guild id, command name) -> {user or role id: shown?}, set by ``permit_command``.
        self.command_overrides: dict[tuple[int, str], dict[int, bool]] = {}
        self.reactions_by_bot: dict[int, list[str]] = {}
        self.rate_limits: list[RateLimitInjection] = []

        self._command_ids: dict[tuple[int | None, int, str], int] = {}
        self._recent: deque[float] = deque()
        self._burst_flagged = False
        self._invalid: deque[float] = deque()
        self._invalid_flagged = False
        self._swept: set[int] = set()
        self._timers: list[asyncio.TimerHandle] = []

        self.gateway = Gateway(self)
        self._routes: list[_Route] = []
        self._holds = Holds()
        self._install_routes()

    # --- lifecycle ---

    async def start(self) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/cdn/attachments/{channel}/{attachment}/{filename}", self._cdn_get)
        app.router.add_get("/media/attachments/{channel}/{attachment}/{filename}", self._cdn_get)
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
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://{self._host}:{self._port}/gateway"

    @property
    def bot_user_id(self) -> int:
        return self.bot_user.id

    # --- clocks ---

    def interaction_clock(self) -> float:
        """The fake's notion of "now" for interaction windows and CDN URL expiry (monotonic seconds)."""
        return time.monotonic() + self._clock_offset

    def _wall(self) -> float:
        return time.time() + self._clock_offset

    def advance_interaction_clock(self, seconds: float) -> None:
        """Pretend ``seconds`` passed: ages every interaction token (and CDN URLs) at once."""
        self._clock_offset += seconds

    advance_clock = advance_interaction_clock

    # --- violations ---

    def record_violation(self, text: str) -> None:
        self._violations.append(text)

    def note(self, text: str) -> None:
        self.log.append(text)

    @property
    def violations(self) -> list[str]:
        self._sweep()
        return self._violations

    def _sweep(self) -> None:
        now = self.interaction_clock()
        for rec in self.interactions.values():
            if rec.id in self._swept or rec.response is not None:
                continue
            if now - rec.created_at > rules.INTERACTION_RESPONSE_WINDOW:
                self._swept.add(rec.id)
                self._violations.append(
                    f"interaction {rec.id} ({rec.name!r}, type {rec.type}) was not acknowledged within 3 s "
                    f"('The application did not respond')"
                )

    def assert_clean(self) -> None:
        if self.violations:
            raise AssertionError("Discord rules were broken:\n  " + "\n  ".join(self._violations))

    def expect_violation(self, fragment: str) -> str:
        """Remove and return the first violation containing ``fragment`` (AssertionError if none)."""
        for i, text in enumerate(self.violations):
            if fragment in text:
                return self._violations.pop(i)
        raise AssertionError(f"no violation mentions {fragment!r}; violations: {self._violations}")

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

    # --- payloads ---

    def _bot_permissions(self, guild_id: int | None = None) -> int:
        return self._member_permissions(self.bot_user.id, guild_id) & ~self._bot_deny

    def _member_permissions(self, user_id: int, guild_id: int | None = None) -> int:
        guild = self.guilds[self.guild_id if guild_id is None else guild_id]
        member = guild.members[user_id]
        perms = guild.roles[guild.id].permissions
        for role_id in member.roles:
            perms |= guild.roles[role_id].permissions
        return perms

    def give_role(self, user: str | int, role_id: int) -> None:
        """The member holds ``role_id`` (of whichever guild owns it) from their next interaction on."""
        guild = self._guild_of_role(role_id)
        member = guild.members[self.user_id(user)]
        if role_id not in member.roles:
            member.roles.append(role_id)

    # --- guilds ---

    @property
    def guild(self) -> GuildRecord:
        """The default guild."""
        return self.guilds[self.guild_id]

    def bot_guilds(self) -> list[GuildRecord]:
        """The guilds the bot is a member of (those it gets GUILD_CREATE for)."""
        return [g for g in self.guilds.values() if g.has_member(self.bot_user.id)]

    def guild_of(self, channel_id: int) -> GuildRecord:
        """The guild a channel or thread belongs to (KeyError for an unknown channel)."""
        if channel_id in self.threads:
            return self.guilds[self.threads[channel_id].guild_id]
        return self.guilds[self.channels[channel_id].guild_id]

    def _guild_of_role(self, role_id: int) -> GuildRecord:
        for guild in self.guilds.values():
            if role_id in guild.roles:
                return guild
        raise KeyError(f"no guild has role {role_id}")

    def add_user(self, name: str, display: str | None = None) -> int:
        """A Discord user who is in no guild yet (``add_member`` puts them in one); returns the id."""
        if name in self.users:
            raise ValueError(f"user {name!r} exists already")
        user = UserRecord(self._ids.next(), name, display or name.title())
        self._users[user.id] = user
        self.users[name] = user.id
        return user.id

    def add_member(self, guild_id: int, user: str | int, roles: tuple[int, ...] | list[int] = ()) -> None:
        """Make ``user`` (a name is created as a new user if unknown) a member of ``guild_id``."""
        guild = self.guilds[guild_id]
        if isinstance(user, str) and user not in self.users:
            self.add_user(user)
        uid = self.user_id(user)
        for role_id in roles:
            if role_id not in guild.roles:
                raise KeyError(f"role {role_id} is not a role of guild {guild.name!r}")
        if uid not in guild.members:
            guild.members[uid] = MemberRecord(self._users[uid], list(roles))

    def add_role(self, guild_id: int, name: str, permissions: int = 0) -> int:
        """A new role in ``guild_id``; returns its id."""
        guild = self.guilds[guild_id]
        role = RoleRecord(self._ids.next(), name, permissions, position=1)
        guild.roles[role.id] = role
        return role.id

    async def add_guild(
        self,
        name: str,
        *,
        members: tuple[str | int, ...] | list[str | int] = (),
        channels: tuple[str, ...] | list[str] = ("general",),
        bot: bool = True,
    ) -> GuildRecord:
        """Another server, with its own text ``channels`` and ``members`` (names not yet known become
        new users). With ``bot`` the bot is a member: a connected bot gets GUILD_CREATE at once (as
        if invited), a later one gets it on IDENTIFY. Its owner is a user that is not a member."""
        if not channels:
            raise ValueError("a guild needs at least one channel")
        owner = UserRecord(self._ids.next(), f"owner-{len(self.guilds) + 1}", f"{name} Owner")
        self._users[owner.id] = owner
        gid = self._ids.next()
        roles = {gid: RoleRecord(gid, "@everyone", EVERYONE_PERMISSIONS, position=0)}
        guild = GuildRecord(gid, name, owner.id, roles, {})
        self.guilds[gid] = guild
        for position, channel_name in enumerate(channels):
            cid = self._ids.next()
            self.channels[cid] = ChannelRecord(cid, gid, channel_name, type=0, position=position)
            guild.channel_ids.append(cid)
        if bot:
            role_id = self._ids.next()
            roles[role_id] = RoleRecord(
                role_id, "Atelier", BOT_PERMISSIONS, position=2, managed=True, bot_id=self.bot_user.id
            )
            guild.bot_role_id = role_id
            guild.members[self.bot_user.id] = MemberRecord(self.bot_user, [role_id])
        for member in members:
            self.add_member(gid, member)
        if bot:
            await self.gateway.dispatch("GUILD_CREATE", self.guild_create_payload(gid))
        return guild

    async def add_channel(self, guild_id: int, name: str) -> int:
        """A new text channel in ``guild_id`` (CHANNEL_CREATE reaches the bot if it is a member)."""
        guild = self.guilds[guild_id]
        cid = self._ids.next()
        self.channels[cid] = ChannelRecord(cid, guild_id, name, type=0, position=len(guild.channel_ids))
        guild.channel_ids.append(cid)
        if guild.has_member(self.bot_user.id):
            await self.gateway.dispatch("CHANNEL_CREATE", self.channels[cid].payload())
        return cid

    def can_see(self, user: str | int, channel_id: int) -> bool:
        """Whether ``user`` can see a channel or thread (and so read its messages and open links into it).

        A member of the guild sees its channels and public threads; a private thread only its
        members and people with Manage Threads."""
        uid = self.user_id(user)
        try:
            guild = self.guild_of(channel_id)
        except KeyError:
            return False
        if not guild.has_member(uid):
            return False
        thread = self.threads.get(channel_id)
        if thread is not None and thread.private:
            return uid in thread.members or bool(self._member_permissions(uid, guild.id) & MANAGE_THREADS)
        return True

    def jump_link(self, message: MessageRecord | int) -> str:
        msg = self.messages[message] if isinstance(message, int) else message
        gid = self.guild_of(msg.channel_id).id
        return f"https://discord.com/channels/{gid}/{msg.channel_id}/{msg.id}"

    def can_open(self, user: str | int, link: str) -> bool:
        """Whether ``user`` can open a message jump link: the guild, channel and message agree and
        exist, and the user can see that channel (a member of its guild)."""
        found = re.fullmatch(r"https://(?:\w+\.)?discord(?:app)?\.com/channels/(\d+)/(\d+)(?:/(\d+))?", link)
        if found is None:
            return False
        gid, cid = int(found.group(1)), int(found.group(2))
        try:
            if self.guild_of(cid).id != gid:
                return False
        except KeyError:
            return False
        if found.group(3) is not None:
            msg = self.messages.get(int(found.group(3)))
            if msg is None or msg.deleted or msg.ephemeral or msg.channel_id != cid:
                return False
        return self.can_see(user, cid)

    def links_in(self, message: MessageRecord | int) -> list[str]:
        """Every Discord jump link in a message's content, embeds and link buttons."""
        msg = self.messages[message] if isinstance(message, int) else message
        text = json.dumps([msg.content, msg.embeds, msg.components])
        return re.findall(r"https://(?:\w+\.)?discord(?:app)?\.com/channels/[\d/]+\d", text)

    async def set_bot_permissions(self, permissions: int) -> None:
        """Give the bot exactly ``permissions`` in every text channel (a member overwrite).

        Dispatches CHANNEL_UPDATE so the bot's cache agrees; REST calls needing a missing
        permission then get 403 / 50013 "Missing Permissions".
        """
        self._bot_deny = ALL_PERMISSIONS & ~permissions
        for channel in self.channels.values():
            if not self.guilds[channel.guild_id].has_member(self.bot_user.id):
                continue
            channel.overwrites = [
                {
                    "id": str(self.bot_user.id),
                    "type": 1,
                    "allow": str(permissions),
                    "deny": str(self._bot_deny),
                }
            ]
            await self.gateway.dispatch("CHANNEL_UPDATE", channel.payload())

    def ready_payload(self, session_id: str) -> dict[str, Any]:
        user = self.bot_user.payload() | {
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
        }
        return {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in self.bot_guilds()],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "shard": [0, 1],
            "application": {"id": str(self.application_id), "flags": APPLICATION_FLAGS},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fake-discord"],
        }

    def guild_create_payloads(self) -> list[dict[str, Any]]:
        """One GUILD_CREATE per guild the bot is in (sent after READY)."""
        return [self.guild_create_payload(g.id) for g in self.bot_guilds()]

    def guild_create_payload(self, guild_id: int | None = None) -> dict[str, Any]:
        guild = self.guilds[self.guild_id if guild_id is None else guild_id]
        members = [m.payload() for m in guild.members.values()]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "application_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "features": [],
            "roles": [r.payload() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": [self.channels[c].payload() for c in guild.channel_ids],
            "threads": [
                t.payload() for t in self.threads.values() if not t.archived and t.guild_id == guild.id
            ],
            "members": members,
            "member_count": len(members),
            "large": False,
            "unavailable": False,
            "joined_at": guild.members[self.bot_user.id].joined_at
            if guild.has_member(self.bot_user.id)
            else None,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "nsfw": False,
            "incidents_data": None,
        }

    def members_chunk_payload(self, request: dict[str, Any]) -> dict[str, Any]:
        ids = request.get("user_ids")
        guild = self.guilds.get(int(request.get("guild_id") or self.guild_id), self.guild)
        members = [
            m.payload()
            for uid, m in guild.members.items()
            if ids is None or str(uid) in {str(i) for i in ids}
        ]
        data: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if request.get("nonce") is not None:
            data["nonce"] = request["nonce"]
        return data

    def _channel_payload(self, channel_id: int) -> dict[str, Any]:
        if channel_id in self.threads:
            return self.threads[channel_id].payload()
        return self.channels[channel_id].payload()

    def _cdn_url(self, att: AttachmentRecord, channel_id: int, prefix: str = "cdn") -> str:
        ex = int(self._wall() + self.cdn_url_ttl)
        issued = int(self._wall())
        path = f"/{prefix}/attachments/{channel_id}/{att.id}/{quote(att.filename)}"
        sig = hmac.new(self._cdn_secret, f"{channel_id}/{att.id}:{ex:x}".encode(), hashlib.sha256).hexdigest()
        return f"{self.base_url}{path}?ex={ex:x}&is={issued:x}&hm={sig}&"

    def _attachment_payload(self, att: AttachmentRecord, channel_id: int) -> dict[str, Any]:
        return {
            "id": str(att.id),
            "filename": att.filename,
            "size": att.size,
            "url": self._cdn_url(att, channel_id),
            "proxy_url": self._cdn_url(att, channel_id, "media"),
            "content_type": att.content_type,
            "description": att.description,
            "flags": 0,
        }

    def message_payload(self, msg: MessageRecord, *, gateway: bool = False) -> dict[str, Any]:
        """The message as Discord would return it (``gateway=True`` adds guild_id and member)."""
        author = self._users[msg.author_id]
        pinged = self.pinged(msg)
        data: dict[str, Any] = {
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "author": author.payload(),
            "content": msg.content,
            "timestamp": iso(msg.created_at),
            "edited_timestamp": iso(msg.edits[-1][0]) if msg.edits else None,
            "tts": msg.tts,
            "mention_everyone": "@everyone" in pinged,
            "mentions": [self._users[int(p[5:])].payload() for p in pinged if p.startswith("user:")],
            "mention_roles": [p[5:] for p in pinged if p.startswith("role:")],
            "attachments": [self._attachment_payload(a, msg.channel_id) for a in msg.attachments],
            "embeds": msg.embeds,
            "reactions": [
                {
                    "emoji": {"id": None, "name": emoji},
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": self.bot_user.id in users,
                    "me_burst": False,
                    "burst_colors": [],
                }
                for emoji, users in msg.reactions.items()
                if users
            ],
            "pinned": False,
            "type": msg.type,
            "flags": msg.flags,
            "components": msg.components,
        }
        if msg.webhook_id is not None:
            data["webhook_id"] = str(msg.webhook_id)
            data["application_id"] = str(self.application_id)
        if msg.interaction_id is not None and msg.interaction_id in self.interactions:
            rec = self.interactions[msg.interaction_id]
            meta: dict[str, Any] = {
                "id": str(rec.id),
                "type": rec.type,
                "user": self._users[rec.user_id].payload(),
                "authorizing_integration_owners": {"0": str(self.guild_of(msg.channel_id).id)},
            }
            if rec.type == 2:
                meta["name"] = rec.name
            if rec.original_message_id is not None and rec.original_message_id != msg.id:
                meta["original_response_message_id"] = str(rec.original_message_id)
            if rec.message_id is not None and rec.type == 3:
                meta["interacted_message_id"] = str(rec.message_id)
            data["interaction_metadata"] = meta
        if msg.message_reference is not None:
            data["message_reference"] = msg.message_reference
        if msg.thread_id is not None and msg.thread_id in self.threads:
            data["thread"] = self.threads[msg.thread_id].payload()
        if gateway:
            guild = self.guild_of(msg.channel_id)
            data["guild_id"] = str(guild.id)
            member = guild.members.get(msg.author_id)
            if member is not None and msg.webhook_id is None:
                data["member"] = member.payload(with_user=False)
        return data

    # --- messages ---

    def _check_channel(self, channel_id: int) -> None:
        """For the bot's REST calls: the channel exists and is in a guild the bot is in."""
        if channel_id not in self.channels and channel_id not in self.threads:
            raise DiscordError(404, 10003, "Unknown Channel", detail=f"channel {channel_id}")
        guild = self.guild_of(channel_id)
        thread = self.threads.get(channel_id)
        if thread is not None and thread.private and not self.can_see(self.bot_user.id, channel_id):
            raise DiscordError(
                403, 50001, "Missing Access", detail=f"private thread {channel_id}: the bot is not a member"
            )
        if not guild.has_member(self.bot_user.id):
            raise DiscordError(
                403,
                50001,
                "Missing Access",
                detail=f"channel {channel_id} is in {guild.name!r}, a guild the bot is not in",
            )

    def _known_channel(self, channel_id: int) -> GuildRecord:
        """For test helpers: the channel's guild (LookupError for an unknown channel)."""
        if channel_id not in self.channels and channel_id not in self.threads:
            raise LookupError(f"no channel {channel_id}")
        return self.guild_of(channel_id)

    def _require(self, perm: int, what: str, channel_id: int) -> None:
        self._check_channel(channel_id)
        if not self._bot_permissions(self.guild_of(channel_id).id) & perm:
            raise DiscordError(403, 50013, "Missing Permissions", detail=what)

    def _get_message(
        self, channel_id: int | None, message_id: int, *, allow_ephemeral: bool = False
    ) -> MessageRecord:
        msg = self.messages.get(message_id)
        if (
            msg is None
            or msg.deleted
            or (channel_id is not None and msg.channel_id != channel_id)
            or (msg.ephemeral and not allow_ephemeral)
        ):
            raise DiscordError(404, 10008, "Unknown Message", detail=f"message {message_id}")
        return msg

    def _attachments_from(self, payload: dict[str, Any], files: list[_Upload]) -> list[AttachmentRecord]:
        described: dict[int, dict[str, Any]] = {}
        for entry in payload.get("attachments") or []:
            with contextlib.suppress(TypeError, ValueError):
                described[int(entry.get("id"))] = entry
        out: list[AttachmentRecord] = []
        for upload in files:
            info = described.get(upload.index, {})
            filename = info.get("filename") or upload.filename
            content_type = upload.content_type
            if content_type in ("application/octet-stream", ""):
                content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            out.append(
                AttachmentRecord(
                    id=self._ids.next(),
                    filename=filename,
                    size=len(upload.data),
                    bytes=upload.data,
                    content_type=content_type,
                    url="",
                    description=info.get("description"),
                )
            )
        return out

    def _store_attachments(self, channel_id: int, atts: list[AttachmentRecord]) -> None:
        for att in atts:
            att.url = self._cdn_url(att, channel_id)
            self._cdn[(channel_id, att.id)] = att

    def _new_message(
        self,
        *,
        channel_id: int,
        payload: dict[str, Any],
        files: list[_Upload],
        via: str,
        author_id: int | None = None,
        interaction: InteractionRecord | None = None,
        flags: int | None = None,
        mtype: int = 0,
    ) -> MessageRecord:
        raw_flags = (payload.get("flags") or 0) if flags is None else flags
        content = payload.get("content") or ""
        msg = MessageRecord(
            id=self._ids.next(),
            channel_id=channel_id,
            author_id=self.bot_user.id if author_id is None else author_id,
            created_via=via,
            content=content,
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            flags=raw_flags,
            allowed_mentions=payload.get("allowed_mentions"),
            interaction_id=interaction.id if interaction is not None else None,
            ephemeral=bool(raw_flags & FLAG_EPHEMERAL),
            created_at=self._wall(),
            type=mtype,
            webhook_id=self.application_id if interaction is not None else None,
            message_reference=payload.get("message_reference"),
            tts=bool(payload.get("tts")),
            payload=payload,
        )
        if content:
            msg.allowed_mentions_history.append(("create", payload.get("allowed_mentions")))
        msg.attachments = self._attachments_from(payload, files)
        self._store_attachments(channel_id, msg.attachments)
        self.messages[msg.id] = msg
        if channel_id in self.threads:
            self.threads[channel_id].message_count += 1
        return msg

    def _check_edit(
        self, msg: MessageRecord, payload: dict[str, Any], files: list[_Upload], size_limit: int
    ) -> None:
        kept = len(msg.attachments)
        if "attachments" in payload and payload["attachments"] is not None:
            keep_ids = {str(a.get("id")) for a in payload["attachments"]}
            kept = sum(1 for a in msg.attachments if str(a.id) in keep_ids)
        rules.check_message(
            payload,
            file_sizes=[len(f.data) for f in files],
            size_limit=size_limit,
            kept_attachments=kept,
            creating=False,
        )
        content = payload.get("content", msg.content)
        embeds = payload.get("embeds", msg.embeds)
        components = payload.get("components", msg.components)
        if not (content or embeds or components or kept or files or msg.loading):
            raise DiscordError(
                400, 50006, "Cannot send an empty message", detail="edit would leave the message empty"
            )

    def _apply_edit(
        self, msg: MessageRecord, payload: dict[str, Any], files: list[_Upload], kind: str = "edit"
    ) -> None:
        was_loading = msg.loading
        if "content" in payload:
            msg.content = payload["content"] or ""
        if "embeds" in payload:
            msg.embeds = list(payload["embeds"] or [])
        if "components" in payload:
            msg.components = list(payload["components"] or [])
        if payload.get("flags") is not None:
            keep = msg.flags & (FLAG_EPHEMERAL | FLAG_HAS_THREAD)
            msg.flags = keep | (payload["flags"] & ~(FLAG_EPHEMERAL | FLAG_LOADING | FLAG_HAS_THREAD))
        if "allowed_mentions" in payload:
            msg.allowed_mentions = payload["allowed_mentions"]
        new = self._attachments_from(payload, files)
        self._store_attachments(msg.channel_id, new)
        if "attachments" in payload and payload["attachments"] is not None:
            keep_ids = {str(a.get("id")) for a in payload["attachments"]}
            msg.attachments = [a for a in msg.attachments if str(a.id) in keep_ids] + new
        else:
            msg.attachments = msg.attachments + new
        msg.flags &= ~FLAG_LOADING
        msg.edits.append((self._wall(), payload))
        if payload.get("content"):
            msg.allowed_mentions_history.append(
                ("fill" if was_loading else kind, payload.get("allowed_mentions"))
            )

    async def _dispatch_message(self, event: str, msg: MessageRecord) -> None:
        if msg.ephemeral:
            return
        thread = self.threads.get(msg.channel_id)
        history = msg.allowed_mentions_history
        if thread is not None and event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            # Posting in a thread joins it; a mention that really pings (allowed_mentions permitting)
            # adds the mentioned user. A mention with pings suppressed adds no one, as on Discord.
            joining = [msg.author_id] if event == "MESSAGE_CREATE" else []
            if history and history[-1][0] != "edit":
                joining += [int(p[5:]) for p in self.pinged(msg) if p.startswith("user:")]
            await self._join_thread(thread, joining)
        guild = self.guild_of(msg.channel_id)
        if not guild.has_member(self.bot_user.id):
            return  # nothing from a guild the bot is not in reaches its gateway
        if event == "MESSAGE_DELETE":
            data = {"id": str(msg.id), "channel_id": str(msg.channel_id), "guild_id": str(guild.id)}
            await self.gateway.dispatch(event, data)
            return
        full = self.message_payload(msg, gateway=True)

        def for_session(session: GatewaySession) -> dict[str, Any]:
            return self._as_seen(full, msg, session.intents)

        await self.gateway.dispatch(event, for_session)

    def bot_intents(self) -> int:
        """The intents of the bot's latest gateway session (0 before it identified)."""
        sessions = sorted(self.gateway.sessions.values(), key=lambda s: s.identified_at)
        return sessions[-1].intents if sessions else 0

    def _as_seen(self, payload: dict[str, Any], msg: MessageRecord, intents: int) -> dict[str, Any]:
        """A message payload as an app with ``intents`` receives it, anywhere in Discord's APIs.

        Without the privileged Message Content intent, content, embeds, attachments, components
        and poll come back empty, except for messages the app sent, messages that mention it and
        DMs (the fake has none). The target of a message context-menu command is sent in full
        (``message_command`` does not pass through here)."""
        mentioned = str(self.bot_user.id) in {m["id"] for m in payload.get("mentions", [])}
        if intents & INTENT_MESSAGE_CONTENT or msg.author_id == self.bot_user.id or mentioned:
            return payload
        blank = payload | {"content": "", "embeds": [], "attachments": [], "components": []}
        blank.pop("poll", None)
        return blank

    def _rest_message(self, msg: MessageRecord) -> dict[str, Any]:
        """A message read over REST by the bot (GET message, history): blanked like gateway events."""
        return self._as_seen(self.message_payload(msg), msg, self.bot_intents())

    # --- HTTP plumbing ---

    def _route(
        self, method: str, pattern: str, handler: Handler, *, auth: bool = True, exempt: bool = False
    ) -> None:
        self._routes.append(_Route(method, re.compile(pattern), handler, auth, exempt))

    def _install_routes(self) -> None:
        snow = r"(?P<{}>\d+)"
        c, m, a, g = (
            snow.format("channel_id"),
            snow.format("message_id"),
            snow.format("app_id"),
            snow.format("guild_id"),
        )
        token = r"(?P<token>[^/]+)"
        r = self._route
        r("GET", r"/users/@me", self._h_me)
        r("GET", r"/users/" + snow.format("user_id"), self._h_user)
        r("GET", r"/oauth2/applications/@me", self._h_application)
        r("GET", r"/applications/@me", self._h_application)
        r("GET", r"/gateway", self._h_gateway, auth=False)
        r("GET", r"/gateway/bot", self._h_gateway)
        r("PUT", rf"/applications/{a}/commands", self._h_put_commands)
        r("GET", rf"/applications/{a}/commands", self._h_get_commands)
        r("POST", rf"/applications/{a}/commands", self._h_post_command)
        r("PUT", rf"/applications/{a}/guilds/{g}/commands", self._h_put_commands)
        r("GET", rf"/applications/{a}/guilds/{g}/commands", self._h_get_commands)
        r("POST", rf"/applications/{a}/guilds/{g}/commands", self._h_post_command)
        r(
            "POST",
            rf"/interactions/(?P<interaction_id>\d+)/{token}/callback",
            self._h_callback,
            auth=False,
            exempt=True,
        )
        r("POST", rf"/webhooks/{a}/{token}", self._h_followup, auth=False, exempt=True)
        wm = rf"/webhooks/{a}/{token}/messages/(?P<message_id>@original|\d+)"
        r("GET", wm, self._h_webhook_get, auth=False, exempt=True)
        r("PATCH", wm, self._h_webhook_patch, auth=False, exempt=True)
        r("DELETE", wm, self._h_webhook_delete, auth=False, exempt=True)
        r("GET", rf"/channels/{c}", self._h_get_channel)
        r("PATCH", rf"/channels/{c}", self._h_patch_channel)
        r("POST", rf"/channels/{c}/typing", self._h_typing)
        r("GET", rf"/channels/{c}/messages", self._h_history)
        r("POST", rf"/channels/{c}/messages", self._h_create_message)
        r("GET", rf"/channels/{c}/messages/{m}", self._h_get_message)
        r("PATCH", rf"/channels/{c}/messages/{m}", self._h_edit_message)
        r("DELETE", rf"/channels/{c}/messages/{m}", self._h_delete_message)
        r("POST", rf"/channels/{c}/messages/{m}/threads", self._h_thread_from_message)
        r("POST", rf"/channels/{c}/threads", self._h_thread)
        tm = rf"/channels/{c}/thread-members"
        r("GET", tm, self._h_thread_members)
        r("GET", tm + "/" + snow.format("user_id"), self._h_thread_member)
        r("PUT", tm + "/(?P<user_id>@me|\\d+)", self._h_add_thread_member)
        r("DELETE", tm + "/(?P<user_id>@me|\\d+)", self._h_remove_thread_member)
        react = rf"/channels/{c}/messages/{m}/reactions/(?P<emoji>[^/]+)"
        r("PUT", react + "/@me", self._h_react)
        r("DELETE", react + "/@me", self._h_unreact)
        r("DELETE", react + "/" + snow.format("user_id"), self._h_unreact_user)
        r("GET", rf"/guilds/{g}", self._h_guild)
        r("GET", rf"/guilds/{g}/channels", self._h_guild_channels)
        r("GET", rf"/guilds/{g}/roles", self._h_guild_roles)
        r("GET", rf"/guilds/{g}/members/" + snow.format("user_id"), self._h_member)

    async def _unrouted(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        self.record_violation(f"unhandled route {request.method} {path} (outside {API_PREFIX})")
        self.requests.append(RequestLog(time.monotonic(), request.method, path, 404))
        return _json({"message": "404: Not Found", "code": 0}, 404)

    async def _read(self, request: web.Request) -> tuple[Any, list[_Upload]]:
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            payload: Any = None
            files: list[_Upload] = []
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                data = bytes(await part.read(decode=False))
                name = part.name or ""
                if name == "payload_json":
                    try:
                        payload = json.loads(data)
                    except ValueError:
                        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None
                    continue
                match = re.fullmatch(r"files\[(\d+)\]|file(\d*)", name)
                index = len(files)
                if match:
                    digits = match.group(1) or match.group(2)
                    index = int(digits) if digits else index
                files.append(
                    _Upload(
                        index=index,
                        filename=part.filename or f"file{index}",
                        data=data,
                        content_type=part.headers.get("Content-Type", "application/octet-stream"),
                    )
                )
            return payload, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None

    def _count(self, route: _Route | None) -> None:
        if route is not None and route.exempt:
            return
        now = time.monotonic()
        self._recent.append(now)
        while self._recent and now - self._recent[0] > 1.0:
            self._recent.popleft()
        if len(self._recent) > rules.GLOBAL_RATE_LIMIT_PER_SECOND:
            if not self._burst_flagged:
                self._burst_flagged = True
                self.record_violation(
                    f"global rate limit: more than {rules.GLOBAL_RATE_LIMIT_PER_SECOND} requests in 1 s "
                    "(interaction endpoints excluded)"
                )
        else:
            self._burst_flagged = False

    def _count_invalid(self, status: int) -> None:
        if status not in (401, 403, 429):
            return
        now = time.monotonic()
        self._invalid.append(now)
        while self._invalid and now - self._invalid[0] > 600:
            self._invalid.popleft()
        if len(self._invalid) > rules.INVALID_REQUESTS_PER_10_MIN and not self._invalid_flagged:
            self._invalid_flagged = True
            self.record_violation("more than 10,000 invalid (401/403/429) requests in 10 min: Cloudflare ban")

    def hold(self, method: str, path: str) -> Hold:
        """Hold the next ``method`` request whose path (after /api/v10) matches the regex ``path``
        until the test calls ``release()`` (see holds.py)."""
        return self._holds.add(method, path)

    def inject_rate_limit(
        self,
        method: str,
        path_regex: str,
        count: int = 1,
        retry_after: float = 0.2,
        global_: bool = False,
    ) -> RateLimitInjection:
        """Answer the next ``count`` matching requests with a 429.

        ``path_regex`` must match the whole path (``re.fullmatch``), relative to /api/v10
        (``r"/channels/\\d+/messages"``) or with the prefix; interaction tokens in paths may be
        matched literally or as ``<token>`` (``r"/webhooks/\\d+/<token>"``).
        """
        rule = RateLimitInjection(method.upper(), path_regex, count, retry_after, global_)
        self.rate_limits.append(rule)
        return rule

    def _injected(self, method: str, rel: str) -> web.Response | None:
        for rule in self.rate_limits:
            if rule.remaining <= 0 or rule.method not in (method, "*"):
                continue
            candidates = (rel, API_PREFIX + rel, _redact(rel), API_PREFIX + _redact(rel))
            if not any(re.fullmatch(rule.path_regex, c) for c in candidates):
                continue
            rule.remaining -= 1
            rule.hits.append(time.monotonic())
            headers = {
                "Retry-After": str(max(1, int(-(-rule.retry_after // 1)))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
                "X-RateLimit-Bucket": hashlib.md5(rule.path_regex.encode()).hexdigest(),
                "X-RateLimit-Scope": "global" if rule.global_ else "user",
                "Via": "1.1 google",
            }
            if rule.global_:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.global_,
            }
            if not rule.global_:
                body["code"] = 0
            return _json(body, 429, headers)
        return None

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
                    f"{method} {_redact(rel)}: {err.status} {err.code} {err.message}"
                    + (f" — {err.detail}" if err.detail else "")
                )
            return _json(err.body(), err.status)
        finally:
            self.requests.append(RequestLog(arrived, method, _redact(rel), status))
            self._count_invalid(status)

    async def _rest_inner(self, request: web.Request, method: str, rel: str) -> web.StreamResponse:
        payload, files = await self._read(request)
        if await self._holds.check(method, rel):
            return web.Response(status=503, text="dropped by the test (held, then released with drop)")
        route: _Route | None = None
        params: dict[str, str] = {}
        path_known = False
        for candidate in self._routes:
            found = candidate.pattern.fullmatch(rel)
            if found is None:
                continue
            path_known = True
            if candidate.method == method:
                route = candidate
                params = {k: unquote(v) for k, v in found.groupdict().items()}
                break
        self._count(route)
        injected = self._injected(method, rel)
        if injected is not None:
            return injected
        if route is None:
            if path_known:
                raise DiscordError(
                    405, 0, "405: Method Not Allowed", detail=f"unhandled route {method} {rel}"
                )
            raise DiscordError(404, 0, "404: Not Found", detail=f"unhandled route {method} {rel}")
        if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
            raise DiscordError(401, 0, "401: Unauthorized", detail="missing or wrong bot token")
        req = _Req(method, rel, params, request.query, payload, files, request.headers)
        if "app_id" in params and int(params["app_id"]) != self.application_id:
            if route.handler in (
                self._h_followup,
                self._h_webhook_get,
                self._h_webhook_patch,
                self._h_webhook_delete,
            ):
                raise DiscordError(404, 10015, "Unknown Webhook", detail="application id does not match")
            raise DiscordError(403, 50001, "Missing Access", detail="not this application")
        if "guild_id" in params:
            guild = self.guilds.get(int(params["guild_id"]))
            if guild is None:
                raise DiscordError(404, 10004, "Unknown Guild")
            if not guild.has_member(self.bot_user.id):
                raise DiscordError(403, 50001, "Missing Access", detail=f"the bot is not in {guild.name!r}")
        return await route.handler(req)

    async def _cdn_get(self, request: web.Request) -> web.StreamResponse:
        try:
            channel_id = int(request.match_info["channel"])
            att_id = int(request.match_info["attachment"])
            ex = int(request.query.get("ex", "0"), 16)
        except ValueError:
            return web.Response(status=404, text="Not found")
        att = self._cdn.get((channel_id, att_id))
        sig = hmac.new(self._cdn_secret, f"{channel_id}/{att_id}:{ex:x}".encode(), hashlib.sha256).hexdigest()
        path = request.rel_url.raw_path
        if att is None or not hmac.compare_digest(sig, request.query.get("hm", "")):
            self.record_violation(f"CDN: GET {path} with an unknown attachment or a bad signature")
            self.requests.append(RequestLog(time.monotonic(), "GET", path, 404))
            return web.Response(status=404, text="This content is no longer available.")
        if self._wall() > ex:
            self.record_violation(
                f"CDN: GET {path} after its signed URL expired (store the bytes, not the URL)"
            )
            self.requests.append(RequestLog(time.monotonic(), "GET", path, 404))
            return web.Response(status=404, text="This content is no longer available.")
        self.requests.append(RequestLog(time.monotonic(), "GET", path, 200))
        return web.Response(body=att.bytes, headers={"Content-Type": att.content_type})

    # --- REST: identity ---

    async def _h_me(self, r: _Req) -> web.StreamResponse:
        return _json(
            self.bot_user.payload()
            | {"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"}
        )

    async def _h_user(self, r: _Req) -> web.StreamResponse:
        user = self._users.get(r.int("user_id"))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return _json(user.payload())

    async def _h_application(self, r: _Req) -> web.StreamResponse:
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": self.bot_user.payload(),
                "owner": self.owner_user.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": APPLICATION_FLAGS,
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "tags": [],
                "approximate_guild_count": 1,
            }
        )

    async def _h_gateway(self, r: _Req) -> web.StreamResponse:
        data: dict[str, Any] = {"url": self.gateway_url}
        if r.path.endswith("/bot"):
            data |= {
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        return _json(data)

    # --- REST: commands ---

    def _command_payload(self, cmd: dict[str, Any], guild_id: int | None) -> dict[str, Any]:
        kind = cmd.get("type", 1)
        key = (guild_id, kind, cmd["name"])
        if key not in self._command_ids:
            self._command_ids[key] = self._ids.next()
        out = {
            "id": str(self._command_ids[key]),
            "application_id": str(self.application_id),
            "version": str(self._ids.next()),
            "type": kind,
            "name": cmd["name"],
            "description": cmd.get("description", "") if kind == 1 else "",
            "options": cmd.get("options") or [],
            # Sent as a number or a string; Discord answers with a string (a bitfield), or null.
            "default_member_permissions": None
            if cmd.get("default_member_permissions") is None
            else str(cmd["default_member_permissions"]),
            "dm_permission": cmd.get("dm_permission", True),
            "nsfw": cmd.get("nsfw", False),
            "contexts": cmd.get("contexts"),
            "integration_types": cmd.get("integration_types", [0]),
            "name_localizations": cmd.get("name_localizations"),
            "description_localizations": cmd.get("description_localizations"),
        }
        if guild_id is not None:
            out["guild_id"] = str(guild_id)
        return out

    async def _h_put_commands(self, r: _Req) -> web.StreamResponse:
        rules.check_commands(r.json)
        guild_id = int(r.params["guild_id"]) if "guild_id" in r.params else None
        stored = [self._command_payload(cmd, guild_id) for cmd in r.json]
        if guild_id is None:
            self.global_commands = stored
        else:
            self.guild_commands[guild_id] = stored
        self.commands = stored
        self.command_syncs.append(("global" if guild_id is None else f"guild:{guild_id}", stored))
        return _json(stored)

    async def _h_post_command(self, r: _Req) -> web.StreamResponse:
        body = r.body()
        guild_id = int(r.params["guild_id"]) if "guild_id" in r.params else None
        current = self.global_commands if guild_id is None else self.guild_commands.get(guild_id, [])
        others = [c for c in current if (c["name"], c["type"]) != (body.get("name"), body.get("type", 1))]
        rules.check_commands([*others, body])
        stored = self._command_payload(body, guild_id)
        merged = [*others, stored]
        if guild_id is None:
            self.global_commands = merged
        else:
            self.guild_commands[guild_id] = merged
        self.commands = merged
        return _json(stored, 201)

    async def _h_get_commands(self, r: _Req) -> web.StreamResponse:
        if "guild_id" in r.params:
            return _json(self.guild_commands.get(int(r.params["guild_id"]), []))
        return _json(self.global_commands)

    # --- REST: interactions ---

    def _reject(self, rec: InteractionRecord | None, r: _Req, err: DiscordError) -> NoReturn:
        if rec is not None:
            rec.rejected.append(
                RejectedCall(
                    r.method, _redact(r.path), err.status, err.code, err.message, self.interaction_clock()
                )
            )
            if not err.detail.startswith(f"interaction {rec.id}"):
                err.detail = (
                    f"interaction {rec.id} ({rec.name!r}): {err.detail}" if err.detail else f"{rec.name!r}"
                )
        raise err

    async def _h_callback(self, r: _Req) -> web.StreamResponse:
        rec = self.interactions.get(r.int("interaction_id"))
        if rec is None or rec.token != r.params["token"]:
            raise DiscordError(404, 10062, "Unknown interaction", detail="no such interaction id/token")
        payload = r.body()
        ctype = payload.get("type")
        data = payload.get("data") or {}
        elapsed = self.interaction_clock() - rec.created_at
        if rec.response is not None:
            self._reject(
                rec,
                r,
                DiscordError(
                    400,
                    40060,
                    "Interaction has already been acknowledged.",
                    detail=f"second callback (type {ctype}); the first was type {rec.response.type}",
                ),
            )
        if elapsed > rules.INTERACTION_RESPONSE_WINDOW:
            self._reject(
                rec,
                r,
                DiscordError(
                    404,
                    10062,
                    "Unknown interaction",
                    detail=f"first callback {elapsed:.2f} s after dispatch (limit 3 s)",
                ),
            )
        if ctype not in CALLBACK_TYPES.get(rec.type, frozenset()) or (
            ctype in (6, 7) and rec.message_id is None
        ):
            errs = FormErrors()
            errs.add("type", "INTERACTION_CALLBACK_TYPE_INVALID", f"Callback type {ctype} is invalid here")
            invalid = DiscordError(
                400,
                50035,
                "Invalid Form Body",
                errors=errs.errors,
                detail=f"callback type {ctype} is not valid for interaction type {rec.type}",
            )
            self._reject(rec, r, invalid)
        sizes = [len(f.data) for f in r.files]
        message: MessageRecord | None = None
        try:
            if ctype == 4:
                rules.check_message(
                    data, file_sizes=sizes, size_limit=rec.attachment_size_limit, creating=True
                )
                message = self._new_message(
                    channel_id=rec.channel_id,
                    payload=data,
                    files=r.files,
                    via="interaction callback 4",
                    interaction=rec,
                    mtype=20 if rec.type == 2 else 0,
                )
            elif ctype == 5:
                flags = FLAG_LOADING | ((data.get("flags") or 0) & FLAG_EPHEMERAL)
                message = self._new_message(
                    channel_id=rec.channel_id,
                    payload={},
                    files=[],
                    via="interaction callback 5 (deferred)",
                    interaction=rec,
                    flags=flags,
                    mtype=20 if rec.type == 2 else 0,
                )
            elif ctype == 7:
                assert rec.message_id is not None
                message = self._get_message(None, rec.message_id, allow_ephemeral=True)
                self._check_edit(message, data, r.files, rec.attachment_size_limit)
                self._apply_edit(message, data, r.files)
            elif ctype == 6:
                assert rec.message_id is not None
                message = self._get_message(None, rec.message_id, allow_ephemeral=True)
            elif ctype == 8:
                rec.choices = rules.check_choices(data)
            elif ctype == 9:
                rules.check_modal(data)
                rec.modal = data
                self._open_modals[(rec.user_id, data["custom_id"])] = _OpenModal(rec, data)
        except DiscordError as err:
            self._reject(rec, r, err)
        attachments = message.attachments if message is not None and ctype in (4, 7) else []
        rec.response = CallbackRecord(
            type=int(ctype or 0),
            data=data,
            received_at=self.interaction_clock(),
            latency=elapsed,
            attachments=list(attachments),
        )
        rec.callbacks.append(rec.response)
        rec._responded.set()
        if message is not None:
            rec.original_message_id = message.id
            if ctype in (4, 5):
                await self._dispatch_message("MESSAGE_CREATE", message)
            elif ctype == 7:
                await self._dispatch_message("MESSAGE_UPDATE", message)
        if not r.flag("with_response"):
            return _no_content()
        info: dict[str, Any] = {"id": str(rec.id), "type": rec.type}
        resource: dict[str, Any] = {"type": ctype}
        if message is not None and ctype in (4, 5, 7):
            info |= {
                "response_message_id": str(message.id),
                "response_message_loading": ctype == 5,
                "response_message_ephemeral": message.ephemeral,
            }
            resource["message"] = self.message_payload(message)
        return _json({"interaction": info, "resource": resource})

    def _webhook_interaction(self, r: _Req) -> InteractionRecord:
        rec = self._by_token.get(r.params["token"])
        if rec is None:
            raise DiscordError(401, 50027, "Invalid Webhook Token", detail="unknown interaction token")
        age = self.interaction_clock() - rec.created_at
        if age > rules.INTERACTION_TOKEN_LIFETIME:
            self._reject(
                rec,
                r,
                DiscordError(
                    401,
                    50027,
                    "Invalid Webhook Token",
                    detail=f"interaction token expired ({age:.0f} s old, lives 15 min)",
                ),
            )
        if rec.response is None:
            self._reject(
                rec,
                r,
                DiscordError(
                    404,
                    10015,
                    "Unknown Webhook",
                    detail="webhook call before the interaction was acknowledged",
                ),
            )
        return rec

    def _webhook_message(self, rec: InteractionRecord, r: _Req) -> MessageRecord:
        raw = r.params["message_id"]
        if raw == "@original":
            if rec.original_message_id is None:
                self._reject(
                    rec, r, DiscordError(404, 10008, "Unknown Message", detail="there is no @original")
                )
            mid = rec.original_message_id
        else:
            mid = int(raw)
            if mid != rec.original_message_id and mid not in {m.id for m in rec.followups}:
                self._reject(
                    rec,
                    r,
                    DiscordError(404, 10008, "Unknown Message", detail="not a message of this interaction"),
                )
        msg = self.messages.get(mid)
        if msg is None or msg.deleted:
            self._reject(rec, r, DiscordError(404, 10008, "Unknown Message", detail="message deleted"))
        return msg

    async def _h_followup(self, r: _Req) -> web.StreamResponse:
        rec = self._webhook_interaction(r)
        data = r.body()
        try:
            rules.check_message(
                data,
                file_sizes=[len(f.data) for f in r.files],
                size_limit=rec.attachment_size_limit,
                creating=True,
            )
        except DiscordError as err:
            self._reject(rec, r, err)
        original = self.messages.get(rec.original_message_id) if rec.original_message_id is not None else None
        assert rec.response is not None
        if rec.response.type == 5 and original is not None and original.loading and not original.deleted:
            # The first follow-up after a deferred response completes the "thinking" message;
            # its ephemeral flag cannot differ from the defer's.
            wanted = bool((data.get("flags") or 0) & FLAG_EPHEMERAL)
            if wanted != original.ephemeral:
                self.record_violation(
                    f"POST {_redact(r.path)}: interaction {rec.id} ({rec.name!r}): first follow-up after a "
                    f"{'ephemeral' if original.ephemeral else 'public'} defer asked ephemeral={wanted}; "
                    "Discord "
                    f"ignores that and the message is {'ephemeral' if original.ephemeral else 'public'}"
                )
            self._apply_edit(original, data, r.files, kind="fill")
            msg = original
            await self._dispatch_message("MESSAGE_UPDATE", msg)
        else:
            msg = self._new_message(
                channel_id=rec.channel_id,
                payload=data,
                files=r.files,
                via="webhook follow-up",
                interaction=rec,
                mtype=20 if rec.type == 2 else 0,
            )
            await self._dispatch_message("MESSAGE_CREATE", msg)
        rec.followups.append(msg)
        return _json(self.message_payload(msg))

    async def _h_webhook_get(self, r: _Req) -> web.StreamResponse:
        rec = self._webhook_interaction(r)
        return _json(self.message_payload(self._webhook_message(rec, r)))

    async def _h_webhook_patch(self, r: _Req) -> web.StreamResponse:
        rec = self._webhook_interaction(r)
        msg = self._webhook_message(rec, r)
        data = r.body()
        try:
            self._check_edit(msg, data, r.files, rec.attachment_size_limit)
        except DiscordError as err:
            self._reject(rec, r, err)
        self._apply_edit(msg, data, r.files)
        await self._dispatch_message("MESSAGE_UPDATE", msg)
        return _json(self.message_payload(msg))

    async def _h_webhook_delete(self, r: _Req) -> web.StreamResponse:
        rec = self._webhook_interaction(r)
        msg = self._webhook_message(rec, r)
        msg.deleted = True
        await self._dispatch_message("MESSAGE_DELETE", msg)
        return _no_content()

    # --- REST: channels ---

    async def _h_get_channel(self, r: _Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self._check_channel(cid)
        return _json(self._channel_payload(cid))

    async def _h_patch_channel(self, r: _Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self._check_channel(cid)
        body = r.body()
        if cid in self.threads:
            rules.check_thread(body, creating=False)
            thread = self.threads[cid]
            thread.name = body.get("name", thread.name)
            thread.archived = body.get("archived", thread.archived)
            thread.locked = body.get("locked", thread.locked)
            thread.auto_archive_duration = body.get("auto_archive_duration", thread.auto_archive_duration)
            data = thread.payload()
            await self.gateway.dispatch("THREAD_UPDATE", data)
            return _json(data)
        channel = self.channels[cid]
        if "name" in body:
            errs = FormErrors()
            errs.length_between("name", body["name"], 1, 100)
            errs.raise_if_any()
            channel.name = body["name"]
        return _json(channel.payload())

    async def _h_typing(self, r: _Req) -> web.StreamResponse:
        self._check_channel(r.int("channel_id"))
        return _no_content()

    async def _h_history(self, r: _Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self._check_channel(cid)
        self._require(READ_MESSAGE_HISTORY, "read message history", r.int("channel_id"))
        limit = int(r.query.get("limit", "50"))
        if not 1 <= limit <= 100:
            raise DiscordError(400, 50035, "Invalid Form Body", detail="limit must be 1..100")
        msgs = self.channel_messages(cid)
        if "before" in r.query:
            msgs = [m for m in msgs if m.id < int(r.query["before"])]
        if "after" in r.query:
            msgs = [m for m in msgs if m.id > int(r.query["after"])][:limit]
        msgs = sorted(msgs, key=lambda m: m.id, reverse=True)[:limit]
        return _json([self._rest_message(m) for m in msgs])

    async def _h_create_message(self, r: _Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self._check_channel(cid)
        self._require(
            SEND_MESSAGES_IN_THREADS if cid in self.threads else SEND_MESSAGES,
            "send messages",
            r.int("channel_id"),
        )
        data = r.body()
        if r.files:
            self._require(ATTACH_FILES, "attach files", r.int("channel_id"))
        rules.check_message(
            data, file_sizes=[len(f.data) for f in r.files], size_limit=self.guild_upload_limit, creating=True
        )
        ref = data.get("message_reference")
        if ref is not None:
            ref_id = int(ref.get("message_id", 0))
            missing = ref_id not in self.messages or self.messages[ref_id].deleted
            if missing and ref.get("fail_if_not_exists", True):
                raise DiscordError(
                    400, 50035, "Invalid Form Body", detail="message_reference: Unknown message"
                )
        msg = self._new_message(
            channel_id=cid,
            payload=data,
            files=r.files,
            via="POST /channels/{channel_id}/messages",
            mtype=19 if ref is not None else 0,
        )
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return _json(self.message_payload(msg))

    async def _h_get_message(self, r: _Req) -> web.StreamResponse:
        self._check_channel(r.int("channel_id"))
        self._require(READ_MESSAGE_HISTORY, "read message history", r.int("channel_id"))
        return _json(self._rest_message(self._get_message(r.int("channel_id"), r.int("message_id"))))

    async def _h_edit_message(self, r: _Req) -> web.StreamResponse:
        self._check_channel(r.int("channel_id"))
        msg = self._get_message(r.int("channel_id"), r.int("message_id"))
        data = r.body()
        if msg.author_id != self.bot_user.id and set(data) - {"flags"}:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._check_edit(msg, data, r.files, self.guild_upload_limit)
        self._apply_edit(msg, data, r.files)
        await self._dispatch_message("MESSAGE_UPDATE", msg)
        return _json(self._rest_message(msg))

    async def _h_delete_message(self, r: _Req) -> web.StreamResponse:
        self._check_channel(r.int("channel_id"))
        msg = self._get_message(r.int("channel_id"), r.int("message_id"))
        if msg.author_id != self.bot_user.id:
            self._require(MANAGE_MESSAGES, "delete another user's message", r.int("channel_id"))
        msg.deleted = True
        await self._dispatch_message("MESSAGE_DELETE", msg)
        return _no_content()

    def _new_thread(
        self, parent_id: int, body: dict[str, Any], *, starter: MessageRecord | None, kind: int
    ) -> ThreadRecord:
        thread = ThreadRecord(
            id=starter.id if starter is not None else self._ids.next(),
            guild_id=self.guild_of(parent_id).id,
            name=body["name"],
            parent_id=parent_id,
            owner_id=self.bot_user.id,
            starter_message_id=starter.id if starter is not None else None,
            auto_archive_duration=body.get("auto_archive_duration") or 4320,
            type=kind,
            rate_limit_per_user=body.get("rate_limit_per_user") or 0,
            created_at=self._wall(),
            invitable=bool(body.get("invitable", True)) if kind == 12 else True,
            members=[self.bot_user.id],  # the creator is a member
        )
        self.threads[thread.id] = thread
        return thread

    def _check_thread_parent(self, cid: int) -> None:
        self._check_channel(cid)
        if cid in self.threads:
            raise DiscordError(
                400, 50024, "Cannot execute action on this channel type", detail="a thread in a thread"
            )

    async def _announce_thread(self, thread: ThreadRecord) -> dict[str, Any]:
        data = thread.payload()
        await self.gateway.dispatch("THREAD_CREATE", data | {"newly_created": True})
        return data

    async def _h_thread_from_message(self, r: _Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self._check_thread_parent(cid)
        self._require(CREATE_PUBLIC_THREADS, "create public threads", r.int("channel_id"))
        msg = self._get_message(cid, r.int("message_id"))
        body = r.body()
        rules.check_thread(body, creating=True)
        if msg.thread_id is not None:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        thread = self._new_thread(cid, body, starter=msg, kind=11)
        msg.thread_id = thread.id
        msg.flags |= FLAG_HAS_THREAD
        return _json(await self._announce_thread(thread), 201)

    async def _h_thread(self, r: _Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self._check_thread_parent(cid)
        body = r.body()
        if "message" in body:
            raise DiscordError(
                400,
                50024,
                "Cannot execute action on this channel type",
                detail="forum post in a text channel",
            )
        kind = body.get("type", 12)
        if kind not in (10, 11, 12):
            raise DiscordError(400, 50035, "Invalid Form Body", detail=f"thread type {kind}")
        self._require(
            CREATE_PRIVATE_THREADS if kind == 12 else CREATE_PUBLIC_THREADS,
            "create threads",
            r.int("channel_id"),
        )
        rules.check_thread(body, creating=True)
        thread = self._new_thread(cid, body, starter=None, kind=kind)
        return _json(await self._announce_thread(thread), 201)

    def _thread(self, r: _Req) -> ThreadRecord:
        cid = r.int("channel_id")
        self._check_channel(cid)
        thread = self.threads.get(cid)
        if thread is None:
            raise DiscordError(
                400, 50024, "Cannot execute action on this channel type", detail="not a thread"
            )
        return thread

    def _thread_member_payload(self, thread: ThreadRecord, user_id: int) -> dict[str, Any]:
        return {
            "id": str(thread.id),
            "user_id": str(user_id),
            "join_timestamp": iso(thread.created_at),
            "flags": 0,
        }

    async def _join_thread(self, thread: ThreadRecord, user_ids: list[int]) -> None:
        """Users join a thread; THREAD_MEMBERS_UPDATE goes to sessions with the members intent."""
        guild = self.guilds[thread.guild_id]
        added = [u for u in dict.fromkeys(user_ids) if u not in thread.members and guild.has_member(u)]
        if not added:
            return
        thread.members.extend(added)
        await self.gateway.dispatch(
            "THREAD_MEMBERS_UPDATE",
            {
                "id": str(thread.id),
                "guild_id": str(thread.guild_id),
                "member_count": min(len(thread.members), 50),
                "added_members": [
                    self._thread_member_payload(thread, u)
                    | {"member": guild.members[u].payload(), "presence": None}
                    for u in added
                ],
            },
        )

    async def _h_thread_members(self, r: _Req) -> web.StreamResponse:
        thread = self._thread(r)
        # Discord restricts listing thread members to apps with the Guild Members intent.
        if not any(s.intents & INTENT_GUILD_MEMBERS for s in self.gateway.live_sessions):
            raise DiscordError(
                403, 50001, "Missing Access", detail="listing thread members needs the GUILD_MEMBERS intent"
            )
        return _json([self._thread_member_payload(thread, u) for u in thread.members])

    async def _h_thread_member(self, r: _Req) -> web.StreamResponse:
        thread = self._thread(r)
        uid = r.int("user_id")
        if uid not in thread.members:
            raise DiscordError(
                404, 10007, "Unknown Member", detail=f"user {uid} is not in thread {thread.id}"
            )
        return _json(self._thread_member_payload(thread, uid))

    async def _h_add_thread_member(self, r: _Req) -> web.StreamResponse:
        thread = self._thread(r)
        raw = r.params["user_id"]
        uid = self.bot_user.id if raw == "@me" else int(raw)
        if thread.archived:
            raise DiscordError(400, 50083, "Thread is archived", detail=f"thread {thread.id}")
        self._require(SEND_MESSAGES_IN_THREADS, "add a thread member", thread.id)
        moderator = bool(self._bot_permissions(thread.guild_id) & MANAGE_THREADS)
        if thread.private and not thread.invitable and uid != self.bot_user.id and not moderator:
            raise DiscordError(
                403, 50013, "Missing Permissions", detail="invitable=False: needs Manage Threads"
            )
        if not self.guilds[thread.guild_id].has_member(uid):
            raise DiscordError(404, 10007, "Unknown Member", detail=f"user {uid} is not in the guild")
        await self._join_thread(thread, [uid])
        return _no_content()

    async def _h_remove_thread_member(self, r: _Req) -> web.StreamResponse:
        thread = self._thread(r)
        raw = r.params["user_id"]
        uid = self.bot_user.id if raw == "@me" else int(raw)
        if thread.archived:
            raise DiscordError(400, 50083, "Thread is archived", detail=f"thread {thread.id}")
        if uid != self.bot_user.id and thread.owner_id != self.bot_user.id:
            self._require(MANAGE_THREADS, "remove a thread member", thread.id)
        if uid in thread.members:
            thread.members.remove(uid)
            await self.gateway.dispatch(
                "THREAD_MEMBERS_UPDATE",
                {
                    "id": str(thread.id),
                    "guild_id": str(thread.guild_id),
                    "member_count": min(len(thread.members), 50),
                    "removed_member_ids": [str(uid)],
                },
            )
        return _no_content()

    def thread_members(self, thread_id: int) -> list[int]:
        """Who is a member of a thread (user ids, the creator first)."""
        return list(self.threads[thread_id].members)

    def _emoji(self, r: _Req) -> str:
        emoji = r.params["emoji"]
        if not emoji or emoji.isascii():
            raise DiscordError(400, 10014, "Unknown Emoji", detail=f"{emoji!r}")
        return emoji

    def _reaction_event(self, msg: MessageRecord, emoji: str, user_id: int, *, add: bool) -> dict[str, Any]:
        guild = self.guild_of(msg.channel_id)
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": str(msg.channel_id),
            "message_id": str(msg.id),
            "guild_id": str(guild.id),
            "emoji": {"id": None, "name": emoji},
            "type": 0,
            "burst": False,
        }
        if add:
            data["member"] = guild.members[user_id].payload()
            data["message_author_id"] = str(msg.author_id)
            data["burst_colors"] = []
        return data

    async def _h_react(self, r: _Req) -> web.StreamResponse:
        self._check_channel(r.int("channel_id"))
        msg = self._get_message(r.int("channel_id"), r.int("message_id"))
        emoji = self._emoji(r)
        self._require(READ_MESSAGE_HISTORY, "read message history", r.int("channel_id"))
        users = msg.reactions.setdefault(emoji, [])
        if not users:
            self._require(ADD_REACTIONS, "add a new reaction", r.int("channel_id"))
        if len(msg.reactions) > 20 and not users:
            raise DiscordError(400, 30010, "Maximum number of reactions reached (20)")
        if self.bot_user.id not in users:
            users.append(self.bot_user.id)
            self.reactions_by_bot.setdefault(msg.id, []).append(emoji)
            await self.gateway.dispatch(
                "MESSAGE_REACTION_ADD", self._reaction_event(msg, emoji, self.bot_user.id, add=True)
            )
        return _no_content()

    async def _h_unreact(self, r: _Req) -> web.StreamResponse:
        return await self._remove_reaction(r, self.bot_user.id)

    async def _h_unreact_user(self, r: _Req) -> web.StreamResponse:
        user_id = r.int("user_id")
        if user_id != self.bot_user.id:
            self._require(MANAGE_MESSAGES, "remove another user's reaction", r.int("channel_id"))
        return await self._remove_reaction(r, user_id)

    async def _remove_reaction(self, r: _Req, user_id: int) -> web.StreamResponse:
        self._check_channel(r.int("channel_id"))
        msg = self._get_message(r.int("channel_id"), r.int("message_id"))
        emoji = self._emoji(r)
        users = msg.reactions.get(emoji, [])
        if user_id in users:
            users.remove(user_id)
            if user_id == self.bot_user.id:
                self.reactions_by_bot.get(msg.id, []).remove(emoji)
            await self.gateway.dispatch(
                "MESSAGE_REACTION_REMOVE", self._reaction_event(msg, emoji, user_id, add=False)
            )
        return _no_content()

    # --- REST: guild ---

    async def _h_guild(self, r: _Req) -> web.StreamResponse:
        data = self.guild_create_payload(r.int("guild_id"))
        for key in ("channels", "threads", "members", "presences", "voice_states", "joined_at", "large"):
            data.pop(key, None)
        return _json(data)

    async def _h_guild_channels(self, r: _Req) -> web.StreamResponse:
        guild = self.guilds[r.int("guild_id")]
        return _json([self.channels[c].payload() for c in guild.channel_ids])

    async def _h_guild_roles(self, r: _Req) -> web.StreamResponse:
        return _json([role.payload() for role in self.guilds[r.int("guild_id")].roles.values()])

    async def _h_member(self, r: _Req) -> web.StreamResponse:
        member = self.guilds[r.int("guild_id")].members.get(r.int("user_id"))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return _json(member.payload())

    # --- test-facing state ---

    def channel_messages(self, channel_id: int | None = None) -> list[MessageRecord]:
        """Messages in a channel, oldest first, without ephemeral or deleted ones."""
        cid = self.channel_id if channel_id is None else channel_id
        return [
            m for m in self.messages.values() if m.channel_id == cid and not m.ephemeral and not m.deleted
        ]

    def bot_messages(self, channel_id: int | None = None) -> list[MessageRecord]:
        return [m for m in self.channel_messages(channel_id) if m.author_id == self.bot_user.id]

    def pings_anyone(self, message: MessageRecord | int, *, include_edits: bool = False) -> bool:
        """True when this message could have pinged someone when its text was sent.

        Looks at the ``allowed_mentions`` sent with its text: at creation, and when a deferred
        response was completed (edit of the "thinking" message or first follow-up). Plain edits
        do not notify on Discord; pass ``include_edits=True`` to judge them too.
        """
        msg = self.messages[message] if isinstance(message, int) else message
        is_reply = msg.message_reference is not None
        return any(
            rules.pings_anyone(am, is_reply=is_reply)
            for kind, am in msg.allowed_mentions_history
            if include_edits or kind != "edit"
        )

    def pinged(self, message: MessageRecord | int) -> list[str]:
        """Who the message's current text pings, given its ``allowed_mentions``.

        Entries: ``"@everyone"`` (also for @here), ``"user:<id>"``, ``"role:<id>"``.
        """
        msg = self.messages[message] if isinstance(message, int) else message
        am = msg.allowed_mentions
        parse = {"everyone", "users", "roles"} if am is None else set(am.get("parse") or [])
        users = set() if am is None else {int(u) for u in am.get("users") or []}
        roles = set() if am is None else {int(r) for r in am.get("roles") or []}
        out: list[str] = []
        if ("@everyone" in msg.content or "@here" in msg.content) and "everyone" in parse:
            out.append("@everyone")
        for uid in _mentioned_ids(msg.content, r"<@!?(\d+)>"):
            if uid in self._users and ("users" in parse or uid in users):
                out.append(f"user:{uid}")
        guild_roles = self.guild_of(msg.channel_id).roles
        for rid in _mentioned_ids(msg.content, r"<@&(\d+)>"):
            if rid in guild_roles and ("roles" in parse or rid in roles):
                out.append(f"role:{rid}")
        return out

    def user_id(self, user: str | int) -> int:
        if isinstance(user, int):
            if user not in self._users:
                raise KeyError(f"unknown user id {user}")
            return user
        if user not in self.users:
            raise KeyError(f"unknown user {user!r}; known: {sorted(self.users)}")
        return self.users[user]

    # --- test-facing actions ---

    async def send_user_message(
        self,
        content: str,
        user: str | int = "alice",
        channel_id: int | None = None,
        attachments: list[tuple[bytes, str, str]] | None = None,
    ) -> MessageRecord:
        """A human posts a message (dispatches MESSAGE_CREATE)."""
        uid = self.user_id(user)
        cid = self.channel_id if channel_id is None else channel_id
        self._check_visible(uid, cid)
        uploads = [_Upload(i, name, data, ctype) for i, (data, name, ctype) in enumerate(attachments or [])]
        msg = self._new_message(
            channel_id=cid, payload={"content": content}, files=uploads, via="user", author_id=uid
        )
        msg.allowed_mentions_history.clear()
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return msg

    async def _interact(
        self,
        itype: int,
        user_id: int,
        channel_id: int,
        data: dict[str, Any],
        *,
        name: str,
        message: MessageRecord | None = None,
    ) -> InteractionRecord:
        if not self.gateway.live_sessions:
            raise AssertionError(f"no bot is connected to the fake gateway\n  {self.describe()}")
        guild = self._check_visible(user_id, channel_id)
        if not guild.has_member(self.bot_user.id):
            raise AssertionError(f"the bot is not in {guild.name!r}: no interaction can reach it from there")
        gid = guild.id
        iid = self._ids.next()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        perms = self._member_permissions(user_id, gid)
        channel = self._channel_payload(channel_id) | {"permissions": str(perms)}
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "token": token,
            "version": 1,
            "attachment_size_limit": self.attachment_size_limit,
            "data": data,
            "guild_id": str(gid),
            "guild": {"id": str(gid), "locale": "en-US", "features": []},
            "guild_locale": "en-US",
            "locale": "en-US",
            "channel_id": str(channel_id),
            "channel": channel,
            "member": guild.members[user_id].payload(permissions=perms),
            "app_permissions": str(self._bot_permissions(gid)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(gid)},
            "context": 0,
        }
        if message is not None:
            payload["message"] = self.message_payload(message)
        rec = InteractionRecord(
            id=iid,
            token=token,
            type=itype,
            name=name,
            user_id=user_id,
            channel_id=channel_id,
            payload=payload,
            created_at=self.interaction_clock(),
            attachment_size_limit=self.attachment_size_limit,
            message_id=message.id if message is not None else None,
            _messages=self.messages,
            _clock=self.interaction_clock,
        )
        self.interactions[iid] = rec
        self._by_token[token] = rec
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(rules.INTERACTION_RESPONSE_WINDOW + 0.05, self._sweep))
        rec.created_at = self.interaction_clock()
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return rec

    def _find_command(self, name: str, guild_id: int | None = None, kind: int = 1) -> dict[str, Any] | None:
        """A command usable in ``guild_id``: its guild commands first, then the global ones."""
        gid = self.guild_id if guild_id is None else guild_id
        for cmd in [*self.guild_commands.get(gid, []), *self.global_commands]:
            if cmd["name"] == name and cmd["type"] == kind:
                return cmd
        return None

    async def _command(self, name: str, guild_id: int | None = None) -> dict[str, Any]:
        gid = self.guild_id if guild_id is None else guild_id
        deadline = time.monotonic() + 5.0
        while True:
            cmd = self._find_command(name, gid)
            if cmd is not None:
                return cmd
            if time.monotonic() > deadline:
                known = [c["name"] for c in self.global_commands + self.guild_commands.get(gid, [])]
                raise LookupError(f"no slash command {name!r} synced for guild {gid}; synced: {known}")
            await asyncio.sleep(0.02)

    def permit_command(
        self, name: str, who: str | int, allowed: bool = True, guild_id: int | None = None
    ) -> None:
        """What a server admin does in Server Settings → Integrations: show (or hide) command
        ``name`` to a user or a role (``who``: a user name, user id or role id), whatever its
        default_member_permissions."""
        gid = self.guild_id if guild_id is None else guild_id
        target = who if isinstance(who, int) and who in self.guilds[gid].roles else self.user_id(who)
        self.command_overrides.setdefault((gid, name), {})[target] = allowed

    def forget_command_permits(self, name: str, guild_id: int | None = None) -> None:
        self.command_overrides.pop((self.guild_id if guild_id is None else guild_id, name), None)

    def _check_command_permissions(self, cmd: dict[str, Any], user_id: int, guild: GuildRecord) -> None:
        """Discord hides a command from members lacking its ``default_member_permissions`` (the
        guild's owner and administrators always see it; per-role overrides are not modelled)."""
        overrides = self.command_overrides.get((guild.id, cmd["name"]), {})
        member = guild.members.get(user_id)
        if member is None:
            return  # not in this guild at all: the visibility check refuses it
        if user_id in overrides or any(r in overrides for r in member.roles):
            # An admin's override in Server Settings → Integrations: the user's own, else any role's.
            allowed = overrides.get(user_id, any(overrides.get(r, False) for r in member.roles))
            if allowed:
                return
            raise AssertionError(f"{cmd['name']!r} is hidden from {member.user.username} by an override")
        raw = cmd.get("default_member_permissions")
        if raw is None:
            return
        needed = int(raw)
        perms = self._member_permissions(user_id, guild.id)
        if user_id == guild.owner_id or perms & ADMINISTRATOR or (needed and perms & needed == needed):
            return
        name = self._users[user_id].username
        raise AssertionError(
            f"{cmd['name']!r} is hidden from {name}: default_member_permissions {needed} "
            f"(they have {perms}); Discord does not let them invoke it"
        )

    def _option_channel(self, cid: int, from_channel: int) -> None:
        """A channel option/select value: Discord only offers channels of the guild it is used in."""
        if self._known_channel(cid).id != self.guild_of(from_channel).id:
            raise ValueError(f"channel {cid} is not in the guild of channel {from_channel}")

    def _check_visible(self, user_id: int, channel_id: int) -> GuildRecord:
        """Test-side guard: a user acts only in channels they can see (AssertionError otherwise)."""
        guild = self._known_channel(channel_id)
        if not self.can_see(user_id, channel_id):
            name = self._users[user_id].username
            raise AssertionError(
                f"{name} cannot see channel {channel_id}"
                + ("" if guild.has_member(user_id) else f": not a member of {guild.name!r}")
            )
        return guild

    def _resolve_user(self, value: Any, resolved: dict[str, Any], guild: GuildRecord | None = None) -> str:
        guild = guild or self.guild
        uid = self.user_id(value if not (isinstance(value, str) and value.isdigit()) else int(value))
        resolved.setdefault("users", {})[str(uid)] = self._users[uid].payload()
        if uid in guild.members:
            resolved.setdefault("members", {})[str(uid)] = guild.members[uid].payload(
                with_user=False, permissions=self._member_permissions(uid, guild.id)
            )
        return str(uid)

    def _resolve_role(self, value: Any, resolved: dict[str, Any], guild: GuildRecord | None = None) -> str:
        roles = (guild or self.guild).roles
        role_id: int | None = None
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            role_id = int(value)
        else:
            role_id = next((r.id for r in roles.values() if r.name == value), None)
        if role_id is None or role_id not in roles:
            raise ValueError(f"unknown role {value!r}")
        resolved.setdefault("roles", {})[str(role_id)] = roles[role_id].payload()
        return str(role_id)

    def _convert_option(
        self,
        opt: dict[str, Any],
        value: Any,
        resolved: dict[str, Any],
        attachments: dict[str, tuple[bytes, str, str]],
        channel_id: int,
    ) -> Any:
        kind = opt["type"]
        name = opt["name"]
        if kind == OPTION_STRING:
            value = str(value)
            if not opt.get("min_length", 0) <= len(value) <= opt.get("max_length", 6000):
                raise ValueError(f"option {name!r}: length {len(value)} outside the command's bounds")
        elif kind == OPTION_INTEGER:
            if isinstance(value, bool) or int(value) != value:
                raise ValueError(f"option {name!r} must be an integer, got {value!r}")
            value = int(value)
        elif kind == OPTION_NUMBER:
            value = float(value)
        elif kind == OPTION_BOOLEAN:
            if not isinstance(value, bool):
                raise ValueError(f"option {name!r} must be a bool, got {value!r}")
        elif kind == OPTION_USER:
            value = self._resolve_user(value, resolved, self.guild_of(channel_id))
        elif kind == OPTION_ROLE:
            value = self._resolve_role(value, resolved, self.guild_of(channel_id))
        elif kind == OPTION_MENTIONABLE:
            try:
                value = self._resolve_user(value, resolved, self.guild_of(channel_id))
            except KeyError:
                value = self._resolve_role(value, resolved, self.guild_of(channel_id))
        elif kind == OPTION_CHANNEL:
            cid = int(value)
            self._option_channel(cid, channel_id)
            resolved.setdefault("channels", {})[str(cid)] = self._channel_payload(cid) | {
                "permissions": str(self._bot_permissions(self.guild_of(cid).id))
            }
            value = str(cid)
        elif kind == OPTION_ATTACHMENT:
            upload = attachments.get(name)
            if upload is None:
                upload = value
            if not (isinstance(upload, tuple) and len(upload) in (3, 4)):
                raise ValueError(
                    f"attachment option {name!r} needs (bytes, filename, content_type[, description])"
                )
            data, filename, content_type = upload[:3]
            att = AttachmentRecord(
                id=self._ids.next(),
                filename=filename,
                size=len(data),
                bytes=data,
                content_type=content_type,
                url="",
                description=upload[3] if len(upload) == 4 else None,  # the alt text
            )
            self._store_attachments(channel_id, [att])
            resolved.setdefault("attachments", {})[str(att.id)] = self._attachment_payload(
                att, channel_id
            ) | {"ephemeral": True}
            value = str(att.id)
        if kind in (OPTION_INTEGER, OPTION_NUMBER) and (
            ("min_value" in opt and value < opt["min_value"])
            or ("max_value" in opt and value > opt["max_value"])
        ):
            raise ValueError(f"option {name!r}: {value} outside the command's bounds")
        choices = opt.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(
                f"option {name!r}: {value!r} is not one of the choices {[c['value'] for c in choices]}"
            )
        return value

    def _build_options(
        self,
        cmd: dict[str, Any],
        options: dict[str, Any],
        subcommand: str | None,
        attachments: dict[str, tuple[bytes, str, str]],
        channel_id: int,
        focused: str | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        defs: list[dict[str, Any]] = cmd.get("options") or []
        path: list[dict[str, Any]] = []
        for part in (subcommand or "").split():
            found = next((o for o in defs if o["name"] == part and o["type"] in (1, 2)), None)
            if found is None:
                raise LookupError(f"/{cmd['name']} has no subcommand (group) {part!r}")
            path.append(found)
            defs = found.get("options") or []
        if any(o["type"] in (1, 2) for o in defs):
            raise ValueError(f"/{cmd['name']} needs a subcommand: {[o['name'] for o in defs]}")
        resolved: dict[str, Any] = {}
        leaf: list[dict[str, Any]] = []
        given = dict(options)
        for name in [n for n, _ in attachments.items() if n not in given]:
            given[name] = None
        by_name = {o["name"]: o for o in defs}
        for name, value in given.items():
            opt = by_name.get(name)
            if opt is None:
                raise ValueError(f"/{cmd['name']} has no option {name!r}; it has {sorted(by_name)}")
            if name == focused:
                leaf.append({"name": name, "type": opt["type"], "value": str(value), "focused": True})
                continue
            value = self._convert_option(opt, value, resolved, attachments, channel_id)
            leaf.append({"name": name, "type": opt["type"], "value": value})
        if focused is None:
            missing = [o["name"] for o in defs if o.get("required") and o["name"] not in given]
            if missing:
                raise ValueError(f"/{cmd['name']}: required options missing: {missing}")
        elif focused not in given:
            raise ValueError(f"focused option {focused!r} must be in options")
        tree = leaf
        for sub in reversed(path):
            tree = [{"name": sub["name"], "type": sub["type"], "options": tree}]
        return tree, resolved

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        user: str | int = "alice",
        channel_id: int | None = None,
        attachments: dict[str, tuple[bytes, str, str]] | None = None,
        subcommand: str | None = None,
    ) -> InteractionRecord:
        """A user runs ``/name`` (INTERACTION_CREATE type 2); returns at once with the record.

        ``attachments`` maps attachment option names to ``(bytes, filename, content_type)``.
        ``subcommand`` is ``"sub"`` or ``"group sub"``.
        """
        cid = self.channel_id if channel_id is None else channel_id
        guild = self._known_channel(cid)
        cmd = await self._command(name, guild.id)
        self._check_command_permissions(cmd, self.user_id(user), guild)
        tree, resolved = self._build_options(cmd, options or {}, subcommand, attachments or {}, cid)
        data: dict[str, Any] = {"id": cmd["id"], "name": name, "type": 1, "options": tree}
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        return await self._interact(2, self.user_id(user), cid, data, name=name)

    async def message_command(
        self, name: str, message_id: int, user: str | int = "alice"
    ) -> InteractionRecord:
        """A user picks the message context-menu command ``name`` on a message (type 3 command)."""
        msg = self.messages[message_id]
        guild = self.guild_of(msg.channel_id)
        cmd = self._find_command(name, guild.id, kind=3)
        if cmd is None:
            raise LookupError(f"no message command {name!r} is synced")
        self._check_command_permissions(cmd, self.user_id(user), guild)
        data: dict[str, Any] = {
            "id": cmd["id"],
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): self.message_payload(msg)}},
        }
        if "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        return await self._interact(2, self.user_id(user), msg.channel_id, data, name=name)

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        focused: str,
        user: str | int = "alice",
        subcommand: str | None = None,
        channel_id: int | None = None,
        timeout: float = 3.5,
    ) -> list[dict[str, Any]]:
        """A user types into option ``focused`` of ``/name``; returns the bot's choices."""
        cid = self.channel_id if channel_id is None else channel_id
        guild = self._known_channel(cid)
        cmd = await self._command(name, guild.id)
        self._check_command_permissions(cmd, self.user_id(user), guild)
        tree, resolved = self._build_options(cmd, options, subcommand, {}, cid, focused=focused)
        data: dict[str, Any] = {"id": cmd["id"], "name": name, "type": 1, "options": tree}
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        rec = await self._interact(4, self.user_id(user), cid, data, name=name)
        response = await rec.wait_response(timeout)
        if response.type != 8:
            raise AssertionError(f"autocomplete for /{name} answered with callback type {response.type}")
        return list(rec.choices or [])

    def _interactable(self, message_id: int, user_id: int) -> MessageRecord:
        msg = self.messages.get(message_id)
        if msg is None or msg.deleted:
            raise LookupError(f"no message {message_id} (or it was deleted)")
        if msg.ephemeral and msg.interaction_id is not None:
            owner = self.interactions[msg.interaction_id].user_id
            if owner != user_id:
                raise AssertionError(f"message {message_id} is ephemeral: only user {owner} can see it")
        self._check_visible(user_id, msg.channel_id)
        return msg

    @staticmethod
    def _find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
        for comp in rules._walk(components):
            if comp.get("custom_id") == custom_id:
                return comp
        return None

    async def click(self, message_id: int, custom_id: str, user: str | int = "alice") -> InteractionRecord:
        """A user clicks a button (INTERACTION_CREATE type 3, component_type 2)."""
        uid = self.user_id(user)
        msg = self._interactable(message_id, uid)
        comp = self._find_component(msg.components, custom_id)
        if comp is None:
            ids = [c.get("custom_id") for c in rules._walk(msg.components) if c.get("custom_id")]
            raise LookupError(f"message {message_id} has no component {custom_id!r}; it has {ids}")
        if comp.get("type") != 2:
            raise ValueError(f"{custom_id!r} is a component of type {comp.get('type')}, not a button")
        if comp.get("disabled"):
            raise AssertionError(f"button {custom_id!r} is disabled: no user can click it")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
        if "id" in comp:
            data["id"] = comp["id"]
        return await self._interact(3, uid, msg.channel_id, data, name=custom_id, message=msg)

    async def select(
        self, message_id: int, custom_id: str, values: list[str], user: str | int = "alice"
    ) -> InteractionRecord:
        """A user picks ``values`` in a select menu (INTERACTION_CREATE type 3)."""
        uid = self.user_id(user)
        msg = self._interactable(message_id, uid)
        comp = self._find_component(msg.components, custom_id)
        if comp is None or comp.get("type") not in rules.SELECT_TYPES:
            raise LookupError(f"message {message_id} has no select menu {custom_id!r}")
        if comp.get("disabled"):
            raise AssertionError(f"select {custom_id!r} is disabled")
        low, high = comp.get("min_values", 1), comp.get("max_values", 1)
        if not low <= len(values) <= high:
            raise ValueError(f"select {custom_id!r} takes {low}..{high} values, got {len(values)}")
        resolved: dict[str, Any] = {}
        kind = comp["type"]
        guild = self.guild_of(msg.channel_id)
        out: list[str] = []
        for value in values:
            if kind == 3:
                allowed = [o["value"] for o in comp.get("options") or []]
                if value not in allowed:
                    raise ValueError(f"{value!r} is not an option of {custom_id!r}: {allowed}")
                out.append(value)
            elif kind == 5:
                out.append(self._resolve_user(value, resolved, guild))
            elif kind == 6:
                out.append(self._resolve_role(value, resolved, guild))
            elif kind == 7:
                try:
                    out.append(self._resolve_user(value, resolved, guild))
                except KeyError:
                    out.append(self._resolve_role(value, resolved, guild))
            else:
                cid = int(value)
                self._option_channel(cid, msg.channel_id)
                resolved.setdefault("channels", {})[str(cid)] = self._channel_payload(cid) | {
                    "permissions": str(self._bot_permissions(guild.id))
                }
                out.append(str(cid))
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": kind, "values": out}
        if resolved:
            data["resolved"] = resolved
        return await self._interact(3, uid, msg.channel_id, data, name=custom_id, message=msg)

    async def submit_modal(
        self,
        custom_id: str,
        fields: dict[str, str | list[str]],
        user: str | int = "alice",
        message_id: int | None = None,
    ) -> InteractionRecord:
        """A user submits the modal the bot opened for them (INTERACTION_CREATE type 5)."""
        uid = self.user_id(user)
        session = self._open_modals.pop((uid, custom_id), None)
        if session is None:
            opened = [cid for (u, cid) in self._open_modals if u == uid]
            raise LookupError(f"no modal {custom_id!r} is open for {user!r}; open: {opened}")
        remaining = dict(fields)
        components: list[dict[str, Any]] = []

        def fill(comp: dict[str, Any]) -> dict[str, Any] | None:
            cid = comp.get("custom_id")
            kind = comp.get("type")
            if kind == 4:
                value = remaining.pop(cid, None) if cid is not None else None
                text = "" if value is None else str(value)
                if comp.get("required", True) and not text:
                    raise ValueError(f"modal {custom_id!r}: field {cid!r} is required")
                if text and not comp.get("min_length", 0) <= len(text) <= comp.get("max_length", 4000):
                    raise ValueError(
                        f"modal {custom_id!r}: field {cid!r} length {len(text)} outside its bounds"
                    )
                return {"type": 4, "custom_id": cid, "value": text}
            if kind in rules.SELECT_TYPES:
                picked = remaining.pop(cid, []) if cid is not None else []
                return {
                    "type": kind,
                    "custom_id": cid,
                    "values": list(picked) if isinstance(picked, list) else [picked],
                }
            return None

        for row in session.data.get("components") or []:
            if row.get("type") == 1:
                inner = [x for x in (fill(c) for c in row.get("components") or []) if x is not None]
                components.append({"type": 1, "components": inner})
            elif row.get("type") == 18:
                filled = fill(row.get("component") or {})
                if filled is not None:
                    components.append({"type": 18, "component": filled})
        if remaining:
            raise ValueError(f"modal {custom_id!r} has no fields {sorted(remaining)}")
        source = session.interaction
        mid = message_id if message_id is not None else source.message_id
        msg = self._interactable(mid, uid) if mid is not None else None
        data = {"custom_id": custom_id, "components": components}
        return await self._interact(5, uid, source.channel_id, data, name=custom_id, message=msg)

    async def react(self, message_id: int, emoji: str, user: str | int = "alice") -> None:
        """A user adds a reaction (MESSAGE_REACTION_ADD)."""
        uid = self.user_id(user)
        msg = self._get_message(None, message_id)
        self._check_visible(uid, msg.channel_id)
        users = msg.reactions.setdefault(emoji, [])
        if uid in users:
            return
        users.append(uid)
        if not self.guild_of(msg.channel_id).has_member(self.bot_user.id):
            return
        await self.gateway.dispatch("MESSAGE_REACTION_ADD", self._reaction_event(msg, emoji, uid, add=True))

    async def unreact(self, message_id: int, emoji: str, user: str | int = "alice") -> None:
        """A user removes their reaction (MESSAGE_REACTION_REMOVE)."""
        uid = self.user_id(user)
        msg = self._get_message(None, message_id)
        users = msg.reactions.get(emoji, [])
        if uid not in users:
            return
        users.remove(uid)
        await self.gateway.dispatch(
            "MESSAGE_REACTION_REMOVE", self._reaction_event(msg, emoji, uid, add=False)
        )


_TOKEN_IN_PATH = re.compile(r"^(/(?:interactions|webhooks)/\d+/)[^/]+")


def _redact(path: str) -> str:
    """Interaction/webhook tokens are long and secret-looking: show them as ``<token>``."""
    return _TOKEN_IN_PATH.sub(r"\1<token>", path)


def _mentioned_ids(content: str, pattern: str) -> list[int]:
    return [int(x) for x in re.findall(pattern, content)]
