"""Application commands: the bot syncs them, an admin shows or hides them, a user invokes them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from tests.fake_discord import rules
from tests.fake_discord.interactions import Interactions
from tests.fake_discord.messages import Messages
from tests.fake_discord.options import Picker, UploadSpec
from tests.fake_discord.routing import APP, GUILD, Req, Route, json_response, route
from tests.fake_discord.state import ADMINISTRATOR, GuildRecord, InteractionRecord
from tests.fake_discord.world import World


class Commands:
    def __init__(self, world: World, interactions: Interactions, messages: Messages, picker: Picker) -> None:
        self.world = world
        self.interactions = interactions
        self.messages = messages
        self.picker = picker
        self._ids: dict[tuple[int | None, int, str], int] = {}  # a command keeps its id across syncs

    def routes(self) -> list[Route]:
        out: list[Route] = []
        for commands in (rf"/applications/{APP}/commands", rf"/applications/{APP}/guilds/{GUILD}/commands"):
            out += [
                route("PUT", commands, self._h_put_commands),
                route("GET", commands, self._h_get_commands),
                route("POST", commands, self._h_post_command),
            ]
        return out

    # --- the bot syncs ---

    def _payload(self, cmd: dict[str, Any], guild_id: int | None) -> dict[str, Any]:
        kind = cmd.get("type", 1)
        key = (guild_id, kind, cmd["name"])
        if key not in self._ids:
            self._ids[key] = self.world.ids.next()
        out = {
            "id": str(self._ids[key]),
            "application_id": str(self.world.application_id),
            "version": str(self.world.ids.next()),
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

    def _synced(self, guild_id: int | None) -> list[dict[str, Any]]:
        return self.world.global_commands if guild_id is None else self.world.guild_commands.get(guild_id, [])

    def _replace(self, guild_id: int | None, stored: list[dict[str, Any]]) -> None:
        if guild_id is None:
            self.world.global_commands = stored
        else:
            self.world.guild_commands[guild_id] = stored
        self.world.commands = stored

    async def _h_put_commands(self, r: Req) -> web.StreamResponse:
        rules.check_commands(r.json)
        guild_id = int(r.params["guild_id"]) if "guild_id" in r.params else None
        stored = [self._payload(cmd, guild_id) for cmd in r.json]
        self._replace(guild_id, stored)
        self.world.command_syncs.append(("global" if guild_id is None else f"guild:{guild_id}", stored))
        return json_response(stored)

    async def _h_post_command(self, r: Req) -> web.StreamResponse:
        body = r.body()
        guild_id = int(r.params["guild_id"]) if "guild_id" in r.params else None
        current = self._synced(guild_id)
        others = [c for c in current if (c["name"], c["type"]) != (body.get("name"), body.get("type", 1))]
        rules.check_commands([*others, body])
        stored = self._payload(body, guild_id)
        self._replace(guild_id, [*others, stored])
        return json_response(stored, 201)

    async def _h_get_commands(self, r: Req) -> web.StreamResponse:
        return json_response(self._synced(int(r.params["guild_id"]) if "guild_id" in r.params else None))

    # --- who sees a command ---

    def permit_command(
        self, name: str, who: str | int, allowed: bool = True, guild_id: int | None = None
    ) -> None:
        """What a server admin does in Server Settings → Integrations: show (or hide) command
        ``name`` to a user or a role (``who``: a user name, user id or role id), whatever its
        default_member_permissions."""
        world = self.world
        gid = world.guild_id if guild_id is None else guild_id
        target = who if isinstance(who, int) and who in world.guilds[gid].roles else world.user_id(who)
        world.command_overrides.setdefault((gid, name), {})[target] = allowed

    def forget_command_permits(self, name: str, guild_id: int | None = None) -> None:
        self.world.command_overrides.pop((self.world.guild_id if guild_id is None else guild_id, name), None)

    def _check_permissions(self, cmd: dict[str, Any], user_id: int, guild: GuildRecord) -> None:
        """Discord hides a command from members lacking its ``default_member_permissions`` (the
        guild's owner and administrators always see it; per-role overrides are not modelled)."""
        overrides = self.world.command_overrides.get((guild.id, cmd["name"]), {})
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
        perms = self.world.member_permissions(user_id, guild.id)
        if user_id == guild.owner_id or perms & ADMINISTRATOR or (needed and perms & needed == needed):
            return
        name = self.world.user_records[user_id].username
        raise AssertionError(
            f"{cmd['name']!r} is hidden from {name}: default_member_permissions {needed} "
            f"(they have {perms}); Discord does not let them invoke it"
        )

    # --- a user invokes ---

    def _find(self, name: str, guild_id: int | None = None, kind: int = 1) -> dict[str, Any] | None:
        """A command usable in ``guild_id``: its guild commands first, then the global ones."""
        world = self.world
        gid = world.guild_id if guild_id is None else guild_id
        for cmd in [*world.guild_commands.get(gid, []), *world.global_commands]:
            if cmd["name"] == name and cmd["type"] == kind:
                return cmd
        return None

    async def _wait_for_slash(self, name: str, guild_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + 5.0
        while True:
            cmd = self._find(name, guild_id)
            if cmd is not None:
                return cmd
            if time.monotonic() > deadline:
                synced = self.world.global_commands + self.world.guild_commands.get(guild_id, [])
                known = [c["name"] for c in synced]
                raise LookupError(f"no slash command {name!r} synced for guild {guild_id}; synced: {known}")
            await asyncio.sleep(0.02)

    async def _invoke(
        self,
        itype: int,
        name: str,
        options: dict[str, Any],
        user: str | int,
        channel_id: int | None,
        subcommand: str | None,
        attachments: dict[str, UploadSpec],
        focused: str | None = None,
    ) -> InteractionRecord:
        """A slash command (``itype`` 2) or its autocomplete (4), once the bot has synced it."""
        cid = self.world.channel_id if channel_id is None else channel_id
        guild = self.world.known_channel(cid)
        cmd = await self._wait_for_slash(name, guild.id)
        self._check_permissions(cmd, self.world.user_id(user), guild)
        tree, resolved = self.picker.build(cmd, options, subcommand, attachments, cid, focused=focused)
        data: dict[str, Any] = {"id": cmd["id"], "name": name, "type": 1, "options": tree}
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        return await self.interactions.create(itype, self.world.user_id(user), cid, data, name=name)

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        user: str | int = "alice",
        channel_id: int | None = None,
        attachments: dict[str, UploadSpec] | None = None,
        subcommand: str | None = None,
    ) -> InteractionRecord:
        """A user runs ``/name`` (INTERACTION_CREATE type 2); returns at once with the record.

        ``attachments`` maps attachment option names to ``(bytes, filename, content_type)``.
        ``subcommand`` is ``"sub"`` or ``"group sub"``.
        """
        return await self._invoke(2, name, options or {}, user, channel_id, subcommand, attachments or {})

    async def message_command(
        self, name: str, message_id: int, user: str | int = "alice"
    ) -> InteractionRecord:
        """A user picks the message context-menu command ``name`` on a message (type 3 command)."""
        msg = self.world.messages[message_id]
        guild = self.world.guild_of(msg.channel_id)
        cmd = self._find(name, guild.id, kind=3)
        if cmd is None:
            raise LookupError(f"no message command {name!r} is synced")
        self._check_permissions(cmd, self.world.user_id(user), guild)
        data: dict[str, Any] = {
            "id": cmd["id"],
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): self.messages.payload(msg)}},
        }
        if "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        return await self.interactions.create(2, self.world.user_id(user), msg.channel_id, data, name=name)

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
        rec = await self._invoke(4, name, options, user, channel_id, subcommand, {}, focused=focused)
        response = await rec.wait_response(timeout)
        if response.type != 8:
            raise AssertionError(f"autocomplete for /{name} answered with callback type {response.type}")
        return list(rec.choices or [])
