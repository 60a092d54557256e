"""Messages: how one is made and edited, who it pings, how it looks to the bot, and its events.

Every way to post or edit (a channel POST, an interaction callback, a webhook follow-up, a
human in a test) goes through ``create``/``check_edit``/``apply_edit`` and ``dispatch`` here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fake_discord import polls, rules
from tests.fake_discord.cdn import Cdn
from tests.fake_discord.gateway import Gateway, GatewaySession
from tests.fake_discord.routing import Upload
from tests.fake_discord.rules import DiscordError
from tests.fake_discord.state import (
    FLAG_EPHEMERAL,
    FLAG_HAS_THREAD,
    FLAG_LOADING,
    INTENT_MESSAGE_CONTENT,
    AttachmentRecord,
    InteractionRecord,
    MessageRecord,
    iso,
)
from tests.fake_discord.threads import Threads
from tests.fake_discord.world import World

_JUMP_LINK = r"https://(?:\w+\.)?discord(?:app)?\.com/channels/"


class Messages:
    def __init__(self, world: World, gateway: Gateway, cdn: Cdn, threads: Threads) -> None:
        self.world = world
        self.gateway = gateway
        self.cdn = cdn
        self.threads = threads

    # --- making and editing ---

    def create(
        self,
        *,
        channel_id: int,
        payload: dict[str, Any],
        files: list[Upload],
        via: str,
        author_id: int | None = None,
        interaction: InteractionRecord | None = None,
        flags: int | None = None,
        mtype: int = 0,
    ) -> MessageRecord:
        world = self.world
        raw_flags = (payload.get("flags") or 0) if flags is None else flags
        content = payload.get("content") or ""
        msg = MessageRecord(
            id=world.ids.next(),
            channel_id=channel_id,
            author_id=world.bot_user.id if author_id is None else author_id,
            created_via=via,
            content=content,
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            flags=raw_flags,
            allowed_mentions=payload.get("allowed_mentions"),
            interaction_id=interaction.id if interaction is not None else None,
            ephemeral=bool(raw_flags & FLAG_EPHEMERAL),
            created_at=world.wall(),
            type=mtype,
            webhook_id=world.application_id if interaction is not None else None,
            message_reference=payload.get("message_reference"),
            tts=bool(payload.get("tts")),
            payload=payload,
        )
        if content:
            msg.allowed_mentions_history.append(("create", payload.get("allowed_mentions")))
        msg.attachments = self.cdn.from_uploads(payload, files)
        self.cdn.store(channel_id, msg.attachments)
        if payload.get("poll") is not None:
            msg.poll = polls.new_poll(payload["poll"], msg.created_at)
        world.messages[msg.id] = msg
        if channel_id in world.threads:
            world.threads[channel_id].message_count += 1
        return msg

    @staticmethod
    def _kept_attachments(msg: MessageRecord, payload: dict[str, Any]) -> list[AttachmentRecord]:
        """The attachments an edit keeps: those its ``attachments`` list names (all if absent)."""
        if "attachments" in payload and payload["attachments"] is not None:
            keep_ids = {str(a.get("id")) for a in payload["attachments"]}
            return [a for a in msg.attachments if str(a.id) in keep_ids]
        return msg.attachments

    def check_edit(
        self, msg: MessageRecord, payload: dict[str, Any], files: list[Upload], size_limit: int
    ) -> None:
        kept = len(self._kept_attachments(msg, payload))
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

    def apply_edit(
        self, msg: MessageRecord, payload: dict[str, Any], files: list[Upload], kind: str = "edit"
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
        new = self.cdn.from_uploads(payload, files)
        self.cdn.store(msg.channel_id, new)
        msg.attachments = self._kept_attachments(msg, payload) + new
        msg.flags &= ~FLAG_LOADING
        msg.edits.append((self.world.wall(), payload))
        if payload.get("content"):
            msg.allowed_mentions_history.append(
                ("fill" if was_loading else kind, payload.get("allowed_mentions"))
            )

    # --- events ---

    async def dispatch(self, event: str, msg: MessageRecord) -> None:
        if msg.ephemeral:
            return
        world = self.world
        thread = world.threads.get(msg.channel_id)
        history = msg.allowed_mentions_history
        if thread is not None and event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            # Posting in a thread joins it; a mention that really pings (allowed_mentions permitting)
            # adds the mentioned user. A mention with pings suppressed adds no one, as on Discord.
            joining = [msg.author_id] if event == "MESSAGE_CREATE" else []
            if history and history[-1][0] != "edit":
                joining += [int(p[5:]) for p in self.pinged(msg) if p.startswith("user:")]
            await self.threads.join(thread, joining)
        guild = world.guild_of(msg.channel_id)
        if not guild.has_member(world.bot_user.id):
            return  # nothing from a guild the bot is not in reaches its gateway
        if event == "MESSAGE_DELETE":
            data = {"id": str(msg.id), "channel_id": str(msg.channel_id), "guild_id": str(guild.id)}
            await self.gateway.dispatch(event, data)
            return
        full = self.payload(msg, gateway=True)

        def for_session(session: GatewaySession) -> dict[str, Any]:
            return self._as_seen(full, msg, session.intents)

        await self.gateway.dispatch(event, for_session)

    # --- payloads ---

    def payload(self, msg: MessageRecord, *, gateway: bool = False) -> dict[str, Any]:
        """The message as Discord would return it (``gateway=True`` adds guild_id and member)."""
        world = self.world
        author = world.user_records[msg.author_id]
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
            "mentions": [world.user_records[int(p[5:])].payload() for p in pinged if p.startswith("user:")],
            "mention_roles": [p[5:] for p in pinged if p.startswith("role:")],
            "attachments": [self.cdn.attachment_payload(a, msg.channel_id) for a in msg.attachments],
            "embeds": msg.embeds,
            "reactions": [
                {
                    "emoji": {"id": None, "name": emoji},
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": world.bot_user.id in users,
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
            data["application_id"] = str(world.application_id)
        if msg.interaction_id is not None and msg.interaction_id in world.interactions:
            data["interaction_metadata"] = self._interaction_metadata(
                msg, world.interactions[msg.interaction_id]
            )
        if msg.message_reference is not None:
            data["message_reference"] = msg.message_reference
        if msg.poll is not None:
            data["poll"] = polls.poll_payload(msg.poll, world.bot_user.id)
        if msg.thread_id is not None and msg.thread_id in world.threads:
            data["thread"] = world.threads[msg.thread_id].payload()
        if gateway:
            guild = world.guild_of(msg.channel_id)
            data["guild_id"] = str(guild.id)
            member = guild.members.get(msg.author_id)
            if member is not None and msg.webhook_id is None:
                data["member"] = member.payload(with_user=False)
        return data

    def _interaction_metadata(self, msg: MessageRecord, rec: InteractionRecord) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "id": str(rec.id),
            "type": rec.type,
            "user": self.world.user_records[rec.user_id].payload(),
            "authorizing_integration_owners": {"0": str(self.world.guild_of(msg.channel_id).id)},
        }
        if rec.type == 2:
            meta["name"] = rec.name
        if rec.original_message_id is not None and rec.original_message_id != msg.id:
            meta["original_response_message_id"] = str(rec.original_message_id)
        if rec.message_id is not None and rec.type == 3:
            meta["interacted_message_id"] = str(rec.message_id)
        return meta

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
        bot_id = self.world.bot_user.id
        mentioned = str(bot_id) in {m["id"] for m in payload.get("mentions", [])}
        if intents & INTENT_MESSAGE_CONTENT or msg.author_id == bot_id or mentioned:
            return payload
        blank = payload | {"content": "", "embeds": [], "attachments": [], "components": []}
        blank.pop("poll", None)
        return blank

    def rest_payload(self, msg: MessageRecord) -> dict[str, Any]:
        """A message read over REST by the bot (GET message, history): blanked like gateway events."""
        return self._as_seen(self.payload(msg), msg, self.bot_intents())

    # --- what tests ask about messages ---

    def _record(self, message: MessageRecord | int) -> MessageRecord:
        return self.world.messages[message] if isinstance(message, int) else message

    def channel_messages(self, channel_id: int | None = None) -> list[MessageRecord]:
        """Messages in a channel, oldest first, without ephemeral or deleted ones."""
        cid = self.world.channel_id if channel_id is None else channel_id
        return [
            m
            for m in self.world.messages.values()
            if m.channel_id == cid and not m.ephemeral and not m.deleted
        ]

    def bot_messages(self, channel_id: int | None = None) -> list[MessageRecord]:
        return [m for m in self.channel_messages(channel_id) if m.author_id == self.world.bot_user.id]

    def pings_anyone(self, message: MessageRecord | int, *, include_edits: bool = False) -> bool:
        """True when this message could have pinged someone when its text was sent.

        Looks at the ``allowed_mentions`` sent with its text: at creation, and when a deferred
        response was completed (edit of the "thinking" message or first follow-up). Plain edits
        do not notify on Discord; pass ``include_edits=True`` to judge them too.
        """
        msg = self._record(message)
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
        msg = self._record(message)
        am = msg.allowed_mentions
        parse = {"everyone", "users", "roles"} if am is None else set(am.get("parse") or [])
        users = set() if am is None else {int(u) for u in am.get("users") or []}
        roles = set() if am is None else {int(r) for r in am.get("roles") or []}
        out: list[str] = []
        if ("@everyone" in msg.content or "@here" in msg.content) and "everyone" in parse:
            out.append("@everyone")
        for uid in _mentioned_ids(msg.content, r"<@!?(\d+)>"):
            if uid in self.world.user_records and ("users" in parse or uid in users):
                out.append(f"user:{uid}")
        guild_roles = self.world.guild_of(msg.channel_id).roles
        for rid in _mentioned_ids(msg.content, r"<@&(\d+)>"):
            if rid in guild_roles and ("roles" in parse or rid in roles):
                out.append(f"role:{rid}")
        return out

    def jump_link(self, message: MessageRecord | int) -> str:
        msg = self._record(message)
        gid = self.world.guild_of(msg.channel_id).id
        return f"https://discord.com/channels/{gid}/{msg.channel_id}/{msg.id}"

    def can_open(self, user: str | int, link: str) -> bool:
        """Whether ``user`` can open a message jump link: the guild, channel and message agree and
        exist, and the user can see that channel (a member of its guild)."""
        found = re.fullmatch(_JUMP_LINK + r"(\d+)/(\d+)(?:/(\d+))?", link)
        if found is None:
            return False
        gid, cid = int(found.group(1)), int(found.group(2))
        try:
            if self.world.guild_of(cid).id != gid:
                return False
        except KeyError:
            return False
        if found.group(3) is not None:
            msg = self.world.messages.get(int(found.group(3)))
            if msg is None or msg.deleted or msg.ephemeral or msg.channel_id != cid:
                return False
        return self.world.can_see(user, cid)

    def links_in(self, message: MessageRecord | int) -> list[str]:
        """Every Discord jump link in a message's content, embeds and link buttons."""
        msg = self._record(message)
        text = json.dumps([msg.content, msg.embeds, msg.components])
        return re.findall(_JUMP_LINK + r"[\d/]+\d", text)


def _mentioned_ids(content: str, pattern: str) -> list[int]:
    return [int(x) for x in re.findall(pattern, content)]
