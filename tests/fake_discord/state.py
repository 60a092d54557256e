"""What the fake Discord remembers: snowflakes, users, the guild, messages, threads, interactions.

Records are dataclasses; each also answers ``record["field"]`` so tests may treat them as dicts.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
CREATE_PRIVATE_THREADS = 1 << 36
SEND_MESSAGES_IN_THREADS = 1 << 38

EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)
MODERATOR_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES | MANAGE_THREADS
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES | MANAGE_THREADS | CREATE_PRIVATE_THREADS
ALL_PERMISSIONS = (1 << 53) - 1

# Gateway intents.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_MESSAGE_CONTENT = 1 << 15
INTENT_GUILD_MESSAGE_POLLS = 1 << 24
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Message flags.
FLAG_HAS_THREAD = 1 << 5
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15


def iso(ts: float | None = None) -> str:
    """An ISO-8601 timestamp as Discord writes them."""
    return datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC).isoformat()


class Snowflakes:
    """Monotonic Discord-style ids (they carry their creation time, like the real ones)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        candidate = (ms << 22) | (1 << 17)
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


class _ItemAccess:
    """Lets ``record["name"]`` read ``record.name``."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


@dataclass(eq=False)
class UserRecord(_ItemAccess):
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    discriminator: str = "0"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": self.discriminator,
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }


@dataclass(eq=False)
class MemberRecord(_ItemAccess):
    user: UserRecord
    roles: list[int]
    joined_at: str = field(default_factory=iso)
    nick: str | None = None

    def payload(self, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "joined_at": self.joined_at,
            "nick": self.nick,
            "avatar": None,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass(eq=False)
class RoleRecord(_ItemAccess):
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass(eq=False)
class GuildRecord(_ItemAccess):
    """One server: its roles (the @everyone role's id is the guild's), members and channels.

    Channels and threads live in the fake's global maps (ids are unique across guilds); a guild
    only lists its channel ids. ``channel_id`` is its first text channel ("general").
    """

    id: int
    name: str
    owner_id: int
    roles: dict[int, RoleRecord]
    members: dict[int, MemberRecord]
    channel_ids: list[int] = field(default_factory=list)
    bot_role_id: int | None = None
    joined_at: str = field(default_factory=iso)

    @property
    def channel_id(self) -> int:
        return self.channel_ids[0]

    def has_member(self, user_id: int) -> bool:
        return user_id in self.members


@dataclass(eq=False)
class ChannelRecord(_ItemAccess):
    id: int
    guild_id: int
    name: str
    type: int = 0
    position: int = 0
    overwrites: list[dict[str, Any]] = field(default_factory=list)
    # Age-restricted. Discord sends `nsfw` on guild channels only; a thread object has no such
    # field and is age-restricted when its parent channel is.
    nsfw: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "guild_id": str(self.guild_id),
            "name": self.name,
            "type": self.type,
            "position": self.position,
            "permission_overwrites": self.overwrites,
            "nsfw": self.nsfw,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "default_auto_archive_duration": 1440,
            "flags": 0,
        }


@dataclass(eq=False)
class ThreadRecord(_ItemAccess):
    id: int
    guild_id: int
    name: str
    parent_id: int
    owner_id: int
    starter_message_id: int | None
    auto_archive_duration: int = 1440
    type: int = 11
    archived: bool = False
    locked: bool = False
    rate_limit_per_user: int = 0
    created_at: float = field(default_factory=time.time)
    message_count: int = 0
    invitable: bool = True
    # Thread members (user ids, the creator first). A private thread is visible only to them and
    # to people with Manage Threads; a public thread is visible to whoever sees its parent.
    members: list[int] = field(default_factory=list)

    @property
    def private(self) -> bool:
        return self.type == 12

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "guild_id": str(self.guild_id),
            "parent_id": str(self.parent_id),
            "owner_id": str(self.owner_id),
            "name": self.name,
            "type": self.type,
            "last_message_id": None,
            "message_count": self.message_count,
            "member_count": min(len(self.members), 50),
            "total_message_sent": self.message_count,
            "rate_limit_per_user": self.rate_limit_per_user,
            "flags": 0,
            "thread_metadata": {
                "archived": self.archived,
                "auto_archive_duration": self.auto_archive_duration,
                "archive_timestamp": iso(self.created_at),
                "locked": self.locked,
                "create_timestamp": iso(self.created_at),
                "invitable": self.invitable,
            },
        }


@dataclass(eq=False)
class AttachmentRecord(_ItemAccess):
    id: int
    filename: str
    size: int
    bytes: builtins.bytes
    content_type: str
    url: str
    description: str | None = None


@dataclass(eq=False)
class MessageRecord(_ItemAccess):
    """One message as the fake stored it.

    ``edits`` holds ``(wall time, payload)`` for every accepted edit; ``allowed_mentions`` is the
    latest one sent; ``allowed_mentions_history`` holds ``(kind, allowed_mentions)`` for every
    payload that carried text, kind being "create", "fill" (completing a deferred response) or "edit".
    """

    id: int
    channel_id: int
    author_id: int
    created_via: str
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[AttachmentRecord] = field(default_factory=list)
    flags: int = 0
    allowed_mentions: dict[str, Any] | None = None
    allowed_mentions_history: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    edits: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    deleted: bool = False
    interaction_id: int | None = None
    ephemeral: bool = False
    created_at: float = field(default_factory=time.time)
    type: int = 0
    webhook_id: int | None = None
    thread_id: int | None = None
    message_reference: dict[str, Any] | None = None
    tts: bool = False
    reactions: dict[str, list[int]] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    poll: Any = None  # a polls.PollRecord when the message carries a poll

    @property
    def author(self) -> int:
        return self.author_id

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    def files(self) -> dict[str, builtins.bytes]:
        return {a.filename: a.bytes for a in self.attachments}


@dataclass(eq=False)
class CallbackRecord(_ItemAccess):
    """An accepted interaction callback (the first response)."""

    type: int
    data: dict[str, Any]
    received_at: float  # the fake's interaction clock
    latency: float  # seconds after the interaction was dispatched
    attachments: list[AttachmentRecord] = field(default_factory=list)

    @property
    def timestamp(self) -> float:
        return self.received_at


@dataclass(eq=False)
class RejectedCall(_ItemAccess):
    method: str
    path: str
    status: int
    code: int
    message: str
    at: float


@dataclass(eq=False)
class InteractionRecord(_ItemAccess):
    """One interaction the fake dispatched, and what the bot did with it."""

    id: int
    token: str
    type: int
    name: str  # command name, custom_id or modal custom_id
    user_id: int
    channel_id: int
    payload: dict[str, Any]
    created_at: float  # the fake's interaction clock; tests may move it back to age the interaction
    attachment_size_limit: int
    message_id: int | None = None  # the message a component/modal interaction came from
    response: CallbackRecord | None = None
    callbacks: list[CallbackRecord] = field(default_factory=list)
    rejected: list[RejectedCall] = field(default_factory=list)
    followups: list[MessageRecord] = field(default_factory=list)
    original_message_id: int | None = None
    modal: dict[str, Any] | None = None
    choices: list[dict[str, Any]] | None = None
    _messages: dict[int, MessageRecord] = field(default_factory=dict, repr=False)
    _responded: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @property
    def acknowledged(self) -> bool:
        return self.response is not None

    async def wait_response(self, timeout: float = 3.5) -> CallbackRecord:
        """The first accepted callback; AssertionError if none came within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._responded.wait(), timeout)
        except TimeoutError:
            rejected = "; ".join(
                f"{r.method} {r.path} -> {r.status}/{r.code} {r.message}" for r in self.rejected
            )
            raise AssertionError(
                f"interaction {self.id} ({self.name!r}) got no accepted callback within {timeout} s"
                + (f"; rejected: {rejected}" if rejected else "")
            ) from None
        assert self.response is not None
        return self.response

    async def original(self) -> MessageRecord | None:
        """The current @original message (after edits), or None if there is none."""
        if self.original_message_id is None:
            return None
        return self._messages.get(self.original_message_id)

    async def wait_followups(self, count: int = 1, timeout: float = 10.0) -> list[MessageRecord]:
        """Wait until at least ``count`` follow-ups were sent; returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.followups) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"interaction {self.id} ({self.name!r}): {len(self.followups)} follow-ups "
                    f"after {timeout} s, wanted {count}"
                )
            await asyncio.sleep(0.01)
        return list(self.followups)

    @property
    def age(self) -> float:
        return self._clock() - self.created_at


class RequestLog(NamedTuple):
    time: float  # time.monotonic() when the request arrived
    method: str
    path: str  # relative to /api/v10, without the query string
    status: int


@dataclass(eq=False)
class RateLimitInjection(_ItemAccess):
    method: str
    path_regex: str
    remaining: int
    retry_after: float
    global_: bool
    hits: list[float] = field(default_factory=list)

    @property
    def consumed(self) -> bool:
        return self.remaining <= 0
