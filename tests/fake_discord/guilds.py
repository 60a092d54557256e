"""Guilds, their members, roles and channels: what the bot is shown, and what a test adds."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fake_discord.gateway import Gateway
from tests.fake_discord.routing import GUILD, USER, Req, Route, json_response, route
from tests.fake_discord.rules import DiscordError
from tests.fake_discord.state import (
    ALL_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    ChannelRecord,
    GuildRecord,
    MemberRecord,
    RoleRecord,
    UserRecord,
)
from tests.fake_discord.world import World

APPLICATION_FLAGS = (1 << 15) | (1 << 19) | (1 << 23)  # members/message content limited, command badge


class GuildPayloads:
    """The world as the gateway (READY, GUILD_CREATE, member chunks) and REST show it to the bot."""

    def __init__(self, world: World) -> None:
        self.world = world

    def me_payload(self) -> dict[str, Any]:
        return self.world.bot_user.payload() | {
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
        }

    def ready_payload(self, session_id: str) -> dict[str, Any]:
        world = self.world
        return {
            "v": 10,
            "user": self.me_payload(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in world.bot_guilds()],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": world.gateway_url,
            "shard": [0, 1],
            "application": {"id": str(world.application_id), "flags": APPLICATION_FLAGS},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fake-discord"],
        }

    def guild_create_payloads(self) -> list[dict[str, Any]]:
        """One GUILD_CREATE per guild the bot is in (sent after READY)."""
        return [self.guild_create_payload(g.id) for g in self.world.bot_guilds()]

    def guild_create_payload(self, guild_id: int | None = None) -> dict[str, Any]:
        world = self.world
        guild = world.guilds[world.guild_id if guild_id is None else guild_id]
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
            "channels": [world.channels[c].payload() for c in guild.channel_ids],
            "threads": [
                t.payload() for t in world.threads.values() if not t.archived and t.guild_id == guild.id
            ],
            "members": members,
            "member_count": len(members),
            "large": False,
            "unavailable": False,
            "joined_at": guild.members[world.bot_user.id].joined_at
            if guild.has_member(world.bot_user.id)
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
        world = self.world
        ids = request.get("user_ids")
        guild = world.guilds.get(int(request.get("guild_id") or world.guild_id), world.guild)
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


class Guilds:
    """The bot's own identity and its guilds over REST, and a test growing the world."""

    def __init__(self, world: World, gateway: Gateway, payloads: GuildPayloads) -> None:
        self.world = world
        self.gateway = gateway
        self.payloads = payloads

    def routes(self) -> list[Route]:
        return [
            route("GET", r"/users/@me", self._h_me),
            route("GET", r"/users/" + USER, self._h_user),
            route("GET", r"/oauth2/applications/@me", self._h_application),
            route("GET", r"/applications/@me", self._h_application),
            route("GET", r"/gateway", self._h_gateway, auth=False),
            route("GET", r"/gateway/bot", self._h_gateway),
            route("GET", rf"/guilds/{GUILD}", self._h_guild),
            route("GET", rf"/guilds/{GUILD}/channels", self._h_guild_channels),
            route("GET", rf"/guilds/{GUILD}/roles", self._h_guild_roles),
            route("GET", rf"/guilds/{GUILD}/members/" + USER, self._h_member),
        ]

    # --- a test grows the world ---

    def add_user(self, name: str, display: str | None = None) -> int:
        """A Discord user who is in no guild yet (``add_member`` puts them in one); returns the id."""
        world = self.world
        if name in world.users:
            raise ValueError(f"user {name!r} exists already")
        user = UserRecord(world.ids.next(), name, display or name.title())
        world.user_records[user.id] = user
        world.users[name] = user.id
        return user.id

    def add_member(self, guild_id: int, user: str | int, roles: tuple[int, ...] | list[int] = ()) -> None:
        """Make ``user`` (a name is created as a new user if unknown) a member of ``guild_id``."""
        world = self.world
        guild = world.guilds[guild_id]
        if isinstance(user, str) and user not in world.users:
            self.add_user(user)
        uid = world.user_id(user)
        for role_id in roles:
            if role_id not in guild.roles:
                raise KeyError(f"role {role_id} is not a role of guild {guild.name!r}")
        if uid not in guild.members:
            guild.members[uid] = MemberRecord(world.user_records[uid], list(roles))

    def add_role(self, guild_id: int, name: str, permissions: int = 0) -> int:
        """A new role in ``guild_id``; returns its id."""
        guild = self.world.guilds[guild_id]
        role = RoleRecord(self.world.ids.next(), name, permissions, position=1)
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
        world = self.world
        owner = UserRecord(world.ids.next(), f"owner-{len(world.guilds) + 1}", f"{name} Owner")
        world.user_records[owner.id] = owner
        gid = world.ids.next()
        roles = {gid: RoleRecord(gid, "@everyone", EVERYONE_PERMISSIONS, position=0)}
        guild = GuildRecord(gid, name, owner.id, roles, {})
        world.guilds[gid] = guild
        for position, channel_name in enumerate(channels):
            cid = world.ids.next()
            world.channels[cid] = ChannelRecord(cid, gid, channel_name, type=0, position=position)
            guild.channel_ids.append(cid)
        if bot:
            role_id = world.ids.next()
            roles[role_id] = world.bot_role(role_id)
            guild.bot_role_id = role_id
            guild.members[world.bot_user.id] = MemberRecord(world.bot_user, [role_id])
        for member in members:
            self.add_member(gid, member)
        if bot:
            await self.gateway.dispatch("GUILD_CREATE", self.payloads.guild_create_payload(gid))
        return guild

    async def add_channel(self, guild_id: int, name: str, nsfw: bool = False) -> int:
        """A new text channel in ``guild_id`` (CHANNEL_CREATE reaches the bot if it is a member);
        ``nsfw``: age-restricted."""
        world = self.world
        guild = world.guilds[guild_id]
        cid = world.ids.next()
        world.channels[cid] = ChannelRecord(
            cid, guild_id, name, type=0, position=len(guild.channel_ids), nsfw=nsfw
        )
        guild.channel_ids.append(cid)
        if guild.has_member(world.bot_user.id):
            await self.gateway.dispatch("CHANNEL_CREATE", world.channels[cid].payload())
        return cid

    async def set_bot_permissions(self, permissions: int) -> None:
        """Give the bot exactly ``permissions`` in every text channel (a member overwrite).

        Dispatches CHANNEL_UPDATE so the bot's cache agrees; REST calls needing a missing
        permission then get 403 / 50013 "Missing Permissions".
        """
        world = self.world
        world.bot_deny = ALL_PERMISSIONS & ~permissions
        for channel in world.channels.values():
            if not world.guilds[channel.guild_id].has_member(world.bot_user.id):
                continue
            channel.overwrites = [
                {
                    "id": str(world.bot_user.id),
                    "type": 1,
                    "allow": str(permissions),
                    "deny": str(world.bot_deny),
                }
            ]
            await self.gateway.dispatch("CHANNEL_UPDATE", channel.payload())

    # --- the bot asks ---

    async def _h_me(self, r: Req) -> web.StreamResponse:
        return json_response(self.payloads.me_payload())

    async def _h_user(self, r: Req) -> web.StreamResponse:
        user = self.world.user_records.get(r.int("user_id"))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def _h_application(self, r: Req) -> web.StreamResponse:
        world = self.world
        return json_response(
            {
                "id": str(world.application_id),
                "name": world.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": world.bot_user.payload(),
                "owner": world.owner_user.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": APPLICATION_FLAGS,
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "tags": [],
                "approximate_guild_count": 1,
            }
        )

    async def _h_gateway(self, r: Req) -> web.StreamResponse:
        data: dict[str, Any] = {"url": self.world.gateway_url}
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
        return json_response(data)

    async def _h_guild(self, r: Req) -> web.StreamResponse:
        data = self.payloads.guild_create_payload(r.int("guild_id"))
        for key in ("channels", "threads", "members", "presences", "voice_states", "joined_at", "large"):
            data.pop(key, None)
        return json_response(data)

    async def _h_guild_channels(self, r: Req) -> web.StreamResponse:
        guild = self.world.guilds[r.int("guild_id")]
        return json_response([self.world.channels[c].payload() for c in guild.channel_ids])

    async def _h_guild_roles(self, r: Req) -> web.StreamResponse:
        return json_response([role.payload() for role in self.world.guilds[r.int("guild_id")].roles.values()])

    async def _h_member(self, r: Req) -> web.StreamResponse:
        member = self.world.guilds[r.int("guild_id")].members.get(r.int("user_id"))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(member.payload())
