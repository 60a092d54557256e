"""Channels and their messages over REST (the bot's side), and a human posting (the test's side)."""

from __future__ import annotations

from aiohttp import web

from tests.fake_discord import rules
from tests.fake_discord.messages import Messages
from tests.fake_discord.polls import check_poll, check_poll_edit
from tests.fake_discord.routing import (
    CHANNEL,
    MESSAGE,
    Req,
    Route,
    Upload,
    json_response,
    no_content,
    route,
)
from tests.fake_discord.rules import DiscordError, FormErrors
from tests.fake_discord.state import (
    ATTACH_FILES,
    MANAGE_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    MessageRecord,
)
from tests.fake_discord.threads import Threads
from tests.fake_discord.world import World


class Channels:
    def __init__(self, world: World, messages: Messages, threads: Threads) -> None:
        self.world = world
        self.messages = messages
        self.threads = threads

    def routes(self) -> list[Route]:
        channel = rf"/channels/{CHANNEL}"
        message = rf"{channel}/messages/{MESSAGE}"
        return [
            route("GET", channel, self._h_get_channel),
            route("PATCH", channel, self._h_patch_channel),
            route("POST", channel + "/typing", self._h_typing),
            route("GET", channel + "/messages", self._h_history),
            route("POST", channel + "/messages", self._h_create_message),
            route("GET", message, self._h_get_message),
            route("PATCH", message, self._h_edit_message),
            route("DELETE", message, self._h_delete_message),
        ]

    async def send_user_message(
        self,
        content: str,
        user: str | int = "alice",
        channel_id: int | None = None,
        attachments: list[tuple[bytes, str, str]] | None = None,
    ) -> MessageRecord:
        """A human posts a message (dispatches MESSAGE_CREATE)."""
        uid = self.world.user_id(user)
        cid = self.world.channel_id if channel_id is None else channel_id
        self.world.check_visible(uid, cid)
        uploads = [Upload(i, name, data, ctype) for i, (data, name, ctype) in enumerate(attachments or [])]
        msg = self.messages.create(
            channel_id=cid, payload={"content": content}, files=uploads, via="user", author_id=uid
        )
        msg.allowed_mentions_history.clear()
        await self.messages.dispatch("MESSAGE_CREATE", msg)
        return msg

    # --- channels ---

    async def _h_get_channel(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self.world.check_channel(cid)
        return json_response(self.world.channel_payload(cid))

    async def _h_patch_channel(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self.world.check_channel(cid)
        body = r.body()
        if cid in self.world.threads:
            return json_response(await self.threads.update(self.world.threads[cid], body))
        channel = self.world.channels[cid]
        if "name" in body:
            errs = FormErrors()
            errs.length_between("name", body["name"], 1, 100)
            errs.raise_if_any()
            channel.name = body["name"]
        return json_response(channel.payload())

    async def _h_typing(self, r: Req) -> web.StreamResponse:
        self.world.check_channel(r.int("channel_id"))
        return no_content()

    # --- messages ---

    async def _h_history(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self.world.check_channel(cid)
        self.world.require(READ_MESSAGE_HISTORY, "read message history", cid)
        limit = int(r.query.get("limit", "50"))
        if not 1 <= limit <= 100:
            raise DiscordError(400, 50035, "Invalid Form Body", detail="limit must be 1..100")
        msgs = self.messages.channel_messages(cid)
        if "before" in r.query:
            msgs = [m for m in msgs if m.id < int(r.query["before"])]
        if "after" in r.query:
            msgs = [m for m in msgs if m.id > int(r.query["after"])][:limit]
        msgs = sorted(msgs, key=lambda m: m.id, reverse=True)[:limit]
        return json_response([self.messages.rest_payload(m) for m in msgs])

    async def _h_create_message(self, r: Req) -> web.StreamResponse:
        world = self.world
        cid = r.int("channel_id")
        world.check_channel(cid)
        world.require(
            SEND_MESSAGES_IN_THREADS if cid in world.threads else SEND_MESSAGES, "send messages", cid
        )
        data = r.body()
        if r.files:
            world.require(ATTACH_FILES, "attach files", cid)
        rules.check_message(
            data, file_sizes=r.file_sizes(), size_limit=world.guild_upload_limit, creating=True
        )
        if data.get("poll") is not None:
            check_poll(data["poll"])
        ref = data.get("message_reference")
        if ref is not None:
            ref_id = int(ref.get("message_id", 0))
            missing = ref_id not in world.messages or world.messages[ref_id].deleted
            if missing and ref.get("fail_if_not_exists", True):
                raise DiscordError(
                    400, 50035, "Invalid Form Body", detail="message_reference: Unknown message"
                )
        msg = self.messages.create(
            channel_id=cid,
            payload=data,
            files=r.files,
            via="POST /channels/{channel_id}/messages",
            mtype=19 if ref is not None else 0,
        )
        await self.messages.dispatch("MESSAGE_CREATE", msg)
        return json_response(self.messages.payload(msg))

    async def _h_get_message(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self.world.check_channel(cid)
        self.world.require(READ_MESSAGE_HISTORY, "read message history", cid)
        return json_response(self.messages.rest_payload(self.world.get_message(cid, r.int("message_id"))))

    async def _h_edit_message(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self.world.check_channel(cid)
        msg = self.world.get_message(cid, r.int("message_id"))
        data = r.body()
        if msg.author_id != self.world.bot_user.id and set(data) - {"flags"}:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        check_poll_edit(msg, data)
        self.messages.check_edit(msg, data, r.files, self.world.guild_upload_limit)
        self.messages.apply_edit(msg, data, r.files)
        await self.messages.dispatch("MESSAGE_UPDATE", msg)
        return json_response(self.messages.rest_payload(msg))

    async def _h_delete_message(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self.world.check_channel(cid)
        msg = self.world.get_message(cid, r.int("message_id"))
        if msg.author_id != self.world.bot_user.id:
            self.world.require(MANAGE_MESSAGES, "delete another user's message", cid)
        msg.deleted = True
        await self.messages.dispatch("MESSAGE_DELETE", msg)
        return no_content()
