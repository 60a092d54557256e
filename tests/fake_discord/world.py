"""What the fake Discord knows: its records, its clock, its address and the rules broken so far.

Every resource (``channels``, ``threads``, ``interactions``, ...) reads and changes this one
``World``; ``FakeDiscord`` is a ``World`` with the REST app and the resources on top, so tests
read ``fake.messages``, ``fake.roles`` and the rest straight from here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from tests.fake_discord import rules
from tests.fake_discord.routing import API_PREFIX
from tests.fake_discord.rules import DiscordError
from tests.fake_discord.state import (
    BOT_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    MANAGE_THREADS,
    MODERATOR_PERMISSIONS,
    ChannelRecord,
    GuildRecord,
    InteractionRecord,
    MemberRecord,
    MessageRecord,
    RateLimitInjection,
    RequestLog,
    RoleRecord,
    Snowflakes,
    ThreadRecord,
    UserRecord,
)


@dataclass
class OpenModal:
    """What a test helper needs from a pending modal (who opened it, and from where)."""

    interaction: InteractionRecord
    data: dict[str, Any]


class World:
    """Every record of the fake Discord and the questions every resource asks of them.

    Built with one bot application, a default guild ("Fake Guild") with a "general" channel,
    the humans ``alice``, ``bob`` and ``mod`` (a "Moderator") and a guild owner who is not a
    member; see ``FakeDiscord`` for how tests use them.
    """

    def __init__(
        self,
        token: str,
        attachment_size_limit: int,
        *,
        guild_upload_limit: int | None,
        host: str,
        port: int,
        allowed_intents: int,
        cdn_url_ttl: float,
    ) -> None:
        self.token = token
        self.attachment_size_limit = attachment_size_limit
        self.guild_upload_limit = attachment_size_limit if guild_upload_limit is None else guild_upload_limit
        self.allowed_intents = allowed_intents
        self.cdn_url_ttl = cdn_url_ttl
        self._host = host
        self._port = port
        self._clock_offset = 0.0
        self.ids = Snowflakes()
        # OAuth2 (oauth.py): the application is the client; a web app registers its callback here.
        self.client_secret = "test-client-secret"
        self.oauth_redirect_uris: set[str] = set()
        self.bot_deny = 0  # permissions taken from the bot by ``set_bot_permissions``

        # The world.
        self.application_id = self.ids.next()
        self.bot_user = UserRecord(self.application_id, "Atelier", "Atelier", bot=True, discriminator="4242")
        self.owner_user = UserRecord(self.ids.next(), "owner", "Guild Owner")
        self.guild_id = self.ids.next()
        self.guild_name = "Fake Guild"
        self.moderator_role_id = self.ids.next()
        self.bot_role_id = self.ids.next()
        self.artist_role_id = self.ids.next()  # a plain role, for features limited to some roles
        self.roles: dict[int, RoleRecord] = {
            self.guild_id: RoleRecord(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0),
            self.moderator_role_id: RoleRecord(
                self.moderator_role_id, "Moderator", MODERATOR_PERMISSIONS, position=1
            ),
            self.artist_role_id: RoleRecord(self.artist_role_id, "Artist", 0, position=1),
            self.bot_role_id: self.bot_role(self.bot_role_id),
        }
        # Every user by id (``users`` maps test names to ids).
        self.user_records: dict[int, UserRecord] = {
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
            user = UserRecord(self.ids.next(), name, display)
            self.user_records[user.id] = user
            self.users[name] = user.id
            self.members[user.id] = MemberRecord(user, list(roles))
        self.channel_id = self.ids.next()
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
        self.by_token: dict[str, InteractionRecord] = {}
        self.open_modals: dict[tuple[int, str], OpenModal] = {}

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
        self.rate_limits: list[RateLimitInjection] = []  # see ``inject_rate_limit``

        self._swept: set[int] = set()
        self.timers: list[asyncio.TimerHandle] = []  # cancelled by ``stop``

    def bot_role(self, role_id: int) -> RoleRecord:
        """The bot's managed role in a guild it joins."""
        return RoleRecord(
            role_id, "Atelier", BOT_PERMISSIONS, position=2, managed=True, bot_id=self.bot_user.id
        )

    # --- address ---

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

    def wall(self) -> float:
        """The fake's wall clock (timestamps, CDN URL expiry); moved by ``advance_interaction_clock``."""
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
        self.sweep()
        return self._violations

    def sweep(self) -> None:
        """Record every interaction left unanswered past its 3 s window (once each)."""
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

    # --- permissions ---

    def bot_permissions(self, guild_id: int | None = None) -> int:
        return self.member_permissions(self.bot_user.id, guild_id) & ~self.bot_deny

    def member_permissions(self, user_id: int, guild_id: int | None = None) -> int:
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

    # --- lookups ---

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

    def user_id(self, user: str | int) -> int:
        if isinstance(user, int):
            if user not in self.user_records:
                raise KeyError(f"unknown user id {user}")
            return user
        if user not in self.users:
            raise KeyError(f"unknown user {user!r}; known: {sorted(self.users)}")
        return self.users[user]

    def channel_payload(self, channel_id: int) -> dict[str, Any]:
        if channel_id in self.threads:
            return self.threads[channel_id].payload()
        return self.channels[channel_id].payload()

    # --- who may see what ---

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
            return uid in thread.members or bool(self.member_permissions(uid, guild.id) & MANAGE_THREADS)
        return True

    def known_channel(self, channel_id: int) -> GuildRecord:
        """For test helpers: the channel's guild (LookupError for an unknown channel)."""
        if channel_id not in self.channels and channel_id not in self.threads:
            raise LookupError(f"no channel {channel_id}")
        return self.guild_of(channel_id)

    def check_visible(self, user_id: int, channel_id: int) -> GuildRecord:
        """Test-side guard: a user acts only in channels they can see (AssertionError otherwise)."""
        guild = self.known_channel(channel_id)
        if not self.can_see(user_id, channel_id):
            name = self.user_records[user_id].username
            raise AssertionError(
                f"{name} cannot see channel {channel_id}"
                + ("" if guild.has_member(user_id) else f": not a member of {guild.name!r}")
            )
        return guild

    # --- what the bot's REST calls may reach ---

    def check_channel(self, channel_id: int) -> None:
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

    def require(self, perm: int, what: str, channel_id: int) -> None:
        """The bot may reach ``channel_id`` and holds ``perm`` there (403 / 50013 otherwise)."""
        self.check_channel(channel_id)
        if not self.bot_permissions(self.guild_of(channel_id).id) & perm:
            raise DiscordError(403, 50013, "Missing Permissions", detail=what)

    def get_message(
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
