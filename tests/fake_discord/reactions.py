"""Reactions: the bot's over REST, a human's from a test, and the events both send."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fake_discord.gateway import Gateway
from tests.fake_discord.routing import CHANNEL, MESSAGE, USER, Req, Route, no_content, route
from tests.fake_discord.rules import DiscordError
from tests.fake_discord.state import ADD_REACTIONS, MANAGE_MESSAGES, READ_MESSAGE_HISTORY, MessageRecord
from tests.fake_discord.world import World


class Reactions:
    def __init__(self, world: World, gateway: Gateway) -> None:
        self.world = world
        self.gateway = gateway

    def routes(self) -> list[Route]:
        react = rf"/channels/{CHANNEL}/messages/{MESSAGE}/reactions/(?P<emoji>[^/]+)"
        return [
            route("PUT", react + "/@me", self._h_react),
            route("DELETE", react + "/@me", self._h_unreact),
            route("DELETE", react + "/" + USER, self._h_unreact_user),
        ]

    # --- a human ---

    async def react(self, message_id: int, emoji: str, user: str | int = "alice") -> None:
        """A user adds a reaction (MESSAGE_REACTION_ADD)."""
        uid = self.world.user_id(user)
        msg = self.world.get_message(None, message_id)
        self.world.check_visible(uid, msg.channel_id)
        users = msg.reactions.setdefault(emoji, [])
        if uid in users:
            return
        users.append(uid)
        if not self.world.guild_of(msg.channel_id).has_member(self.world.bot_user.id):
            return
        await self._added(msg, emoji, uid)

    async def unreact(self, message_id: int, emoji: str, user: str | int = "alice") -> None:
        """A user removes their reaction (MESSAGE_REACTION_REMOVE)."""
        uid = self.world.user_id(user)
        msg = self.world.get_message(None, message_id)
        users = msg.reactions.get(emoji, [])
        if uid not in users:
            return
        users.remove(uid)
        await self._removed(msg, emoji, uid)

    # --- the bot ---

    def _emoji(self, r: Req) -> str:
        emoji = r.params["emoji"]
        if not emoji or emoji.isascii():
            raise DiscordError(400, 10014, "Unknown Emoji", detail=f"{emoji!r}")
        return emoji

    async def _h_react(self, r: Req) -> web.StreamResponse:
        world = self.world
        cid = r.int("channel_id")
        world.check_channel(cid)
        msg = world.get_message(cid, r.int("message_id"))
        emoji = self._emoji(r)
        world.require(READ_MESSAGE_HISTORY, "read message history", cid)
        users = msg.reactions.setdefault(emoji, [])
        if not users:
            world.require(ADD_REACTIONS, "add a new reaction", cid)
        if len(msg.reactions) > 20 and not users:
            raise DiscordError(400, 30010, "Maximum number of reactions reached (20)")
        if world.bot_user.id not in users:
            users.append(world.bot_user.id)
            world.reactions_by_bot.setdefault(msg.id, []).append(emoji)
            await self._added(msg, emoji, world.bot_user.id)
        return no_content()

    async def _h_unreact(self, r: Req) -> web.StreamResponse:
        return await self._remove(r, self.world.bot_user.id)

    async def _h_unreact_user(self, r: Req) -> web.StreamResponse:
        user_id = r.int("user_id")
        if user_id != self.world.bot_user.id:
            self.world.require(MANAGE_MESSAGES, "remove another user's reaction", r.int("channel_id"))
        return await self._remove(r, user_id)

    async def _remove(self, r: Req, user_id: int) -> web.StreamResponse:
        cid = r.int("channel_id")
        self.world.check_channel(cid)
        msg = self.world.get_message(cid, r.int("message_id"))
        emoji = self._emoji(r)
        users = msg.reactions.get(emoji, [])
        if user_id in users:
            users.remove(user_id)
            if user_id == self.world.bot_user.id:
                self.world.reactions_by_bot.get(msg.id, []).remove(emoji)
            await self._removed(msg, emoji, user_id)
        return no_content()

    # --- events ---

    async def _added(self, msg: MessageRecord, emoji: str, user_id: int) -> None:
        await self.gateway.dispatch("MESSAGE_REACTION_ADD", self._event(msg, emoji, user_id, add=True))

    async def _removed(self, msg: MessageRecord, emoji: str, user_id: int) -> None:
        await self.gateway.dispatch("MESSAGE_REACTION_REMOVE", self._event(msg, emoji, user_id, add=False))

    def _event(self, msg: MessageRecord, emoji: str, user_id: int, *, add: bool) -> dict[str, Any]:
        guild = self.world.guild_of(msg.channel_id)
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
