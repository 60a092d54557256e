"""Threads: creating them (from a message or not), editing them, and who is a member."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fake_discord import rules
from tests.fake_discord.gateway import Gateway
from tests.fake_discord.routing import CHANNEL, MESSAGE, USER, Req, Route, json_response, no_content, route
from tests.fake_discord.rules import DiscordError
from tests.fake_discord.state import (
    CREATE_PRIVATE_THREADS,
    CREATE_PUBLIC_THREADS,
    FLAG_HAS_THREAD,
    INTENT_GUILD_MEMBERS,
    MANAGE_THREADS,
    SEND_MESSAGES_IN_THREADS,
    MessageRecord,
    ThreadRecord,
    iso,
)
from tests.fake_discord.world import World


class Threads:
    def __init__(self, world: World, gateway: Gateway) -> None:
        self.world = world
        self.gateway = gateway

    def routes(self) -> list[Route]:
        members = rf"/channels/{CHANNEL}/thread-members"
        return [
            route("POST", rf"/channels/{CHANNEL}/messages/{MESSAGE}/threads", self._h_thread_from_message),
            route("POST", rf"/channels/{CHANNEL}/threads", self._h_thread),
            route("GET", members, self._h_thread_members),
            route("GET", members + "/" + USER, self._h_thread_member),
            route("PUT", members + "/(?P<user_id>@me|\\d+)", self._h_add_thread_member),
            route("DELETE", members + "/(?P<user_id>@me|\\d+)", self._h_remove_thread_member),
        ]

    def thread_members(self, thread_id: int) -> list[int]:
        """Who is a member of a thread (user ids, the creator first)."""
        return list(self.world.threads[thread_id].members)

    async def update(self, thread: ThreadRecord, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH /channels/{thread}: rename, archive, lock; THREAD_UPDATE goes out."""
        rules.check_thread(body, creating=False)
        thread.name = body.get("name", thread.name)
        thread.archived = body.get("archived", thread.archived)
        thread.locked = body.get("locked", thread.locked)
        thread.auto_archive_duration = body.get("auto_archive_duration", thread.auto_archive_duration)
        data = thread.payload()
        await self.gateway.dispatch("THREAD_UPDATE", data)
        return data

    async def join(self, thread: ThreadRecord, user_ids: list[int]) -> None:
        """Users join a thread; THREAD_MEMBERS_UPDATE goes to sessions with the members intent."""
        guild = self.world.guilds[thread.guild_id]
        added = [u for u in dict.fromkeys(user_ids) if u not in thread.members and guild.has_member(u)]
        if not added:
            return
        thread.members.extend(added)
        await self._members_update(
            thread,
            added_members=[
                self._member_payload(thread, u) | {"member": guild.members[u].payload(), "presence": None}
                for u in added
            ],
        )

    async def _members_update(self, thread: ThreadRecord, **change: list[Any]) -> None:
        await self.gateway.dispatch(
            "THREAD_MEMBERS_UPDATE",
            {
                "id": str(thread.id),
                "guild_id": str(thread.guild_id),
                "member_count": min(len(thread.members), 50),
                **change,
            },
        )

    def _member_payload(self, thread: ThreadRecord, user_id: int) -> dict[str, Any]:
        return {
            "id": str(thread.id),
            "user_id": str(user_id),
            "join_timestamp": iso(thread.created_at),
            "flags": 0,
        }

    # --- creating ---

    def _new_thread(
        self, parent_id: int, body: dict[str, Any], *, starter: MessageRecord | None, kind: int
    ) -> ThreadRecord:
        world = self.world
        thread = ThreadRecord(
            id=starter.id if starter is not None else world.ids.next(),
            guild_id=world.guild_of(parent_id).id,
            name=body["name"],
            parent_id=parent_id,
            owner_id=world.bot_user.id,
            starter_message_id=starter.id if starter is not None else None,
            auto_archive_duration=body.get("auto_archive_duration") or 4320,
            type=kind,
            rate_limit_per_user=body.get("rate_limit_per_user") or 0,
            created_at=world.wall(),
            invitable=bool(body.get("invitable", True)) if kind == 12 else True,
            members=[world.bot_user.id],  # the creator is a member
        )
        world.threads[thread.id] = thread
        return thread

    def _check_parent(self, cid: int) -> None:
        self.world.check_channel(cid)
        if cid in self.world.threads:
            raise DiscordError(
                400, 50024, "Cannot execute action on this channel type", detail="a thread in a thread"
            )

    async def _announce(self, thread: ThreadRecord) -> web.StreamResponse:
        data = thread.payload()
        await self.gateway.dispatch("THREAD_CREATE", data | {"newly_created": True})
        return json_response(data, 201)

    async def _h_thread_from_message(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self._check_parent(cid)
        self.world.require(CREATE_PUBLIC_THREADS, "create public threads", cid)
        msg = self.world.get_message(cid, r.int("message_id"))
        body = r.body()
        rules.check_thread(body, creating=True)
        if msg.thread_id is not None:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        thread = self._new_thread(cid, body, starter=msg, kind=11)
        msg.thread_id = thread.id
        msg.flags |= FLAG_HAS_THREAD
        return await self._announce(thread)

    async def _h_thread(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self._check_parent(cid)
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
        self.world.require(
            CREATE_PRIVATE_THREADS if kind == 12 else CREATE_PUBLIC_THREADS, "create threads", cid
        )
        rules.check_thread(body, creating=True)
        thread = self._new_thread(cid, body, starter=None, kind=kind)
        if kind == 11:
            # A public thread without a starter gets Discord's own "started a thread" notice
            # (type 18, THREAD_CREATED) in the parent: posted by Discord, outside the app's buckets.
            world = self.world
            notice = MessageRecord(
                id=world.ids.next(),
                channel_id=cid,
                author_id=world.bot_user.id,
                created_via="thread-created",
                content=thread.name,
                created_at=world.wall(),
                type=18,
                message_reference={"channel_id": str(thread.id), "guild_id": str(thread.guild_id)},
            )
            world.messages[notice.id] = notice
        return await self._announce(thread)

    # --- members ---

    def _thread(self, r: Req) -> ThreadRecord:
        cid = r.int("channel_id")
        self.world.check_channel(cid)
        thread = self.world.threads.get(cid)
        if thread is None:
            raise DiscordError(
                400, 50024, "Cannot execute action on this channel type", detail="not a thread"
            )
        return thread

    def _open_thread_and_user(self, r: Req) -> tuple[ThreadRecord, int]:
        """For adding or removing a member: the thread (not archived) and the user (``@me``: the bot)."""
        thread = self._thread(r)
        raw = r.params["user_id"]
        uid = self.world.bot_user.id if raw == "@me" else int(raw)
        if thread.archived:
            raise DiscordError(400, 50083, "Thread is archived", detail=f"thread {thread.id}")
        return thread, uid

    async def _h_thread_members(self, r: Req) -> web.StreamResponse:
        thread = self._thread(r)
        # Discord restricts listing thread members to apps with the Guild Members intent.
        if not any(s.intents & INTENT_GUILD_MEMBERS for s in self.gateway.live_sessions):
            raise DiscordError(
                403, 50001, "Missing Access", detail="listing thread members needs the GUILD_MEMBERS intent"
            )
        return json_response([self._member_payload(thread, u) for u in thread.members])

    async def _h_thread_member(self, r: Req) -> web.StreamResponse:
        thread = self._thread(r)
        uid = r.int("user_id")
        if uid not in thread.members:
            raise DiscordError(
                404, 10007, "Unknown Member", detail=f"user {uid} is not in thread {thread.id}"
            )
        return json_response(self._member_payload(thread, uid))

    async def _h_add_thread_member(self, r: Req) -> web.StreamResponse:
        world = self.world
        thread, uid = self._open_thread_and_user(r)
        world.require(SEND_MESSAGES_IN_THREADS, "add a thread member", thread.id)
        moderator = bool(world.bot_permissions(thread.guild_id) & MANAGE_THREADS)
        if thread.private and not thread.invitable and uid != world.bot_user.id and not moderator:
            raise DiscordError(
                403, 50013, "Missing Permissions", detail="invitable=False: needs Manage Threads"
            )
        if not world.guilds[thread.guild_id].has_member(uid):
            raise DiscordError(404, 10007, "Unknown Member", detail=f"user {uid} is not in the guild")
        await self.join(thread, [uid])
        return no_content()

    async def _h_remove_thread_member(self, r: Req) -> web.StreamResponse:
        thread, uid = self._open_thread_and_user(r)
        if uid != self.world.bot_user.id and thread.owner_id != self.world.bot_user.id:
            self.world.require(MANAGE_THREADS, "remove a thread member", thread.id)
        if uid in thread.members:
            thread.members.remove(uid)
            await self._members_update(thread, removed_member_ids=[str(uid)])
        return no_content()
