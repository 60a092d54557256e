"""Rows of the web studio: sign-in sessions, the bot's guilds, generations started on the web."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio.store.repository import Store


@dataclass(frozen=True)
class WebGuild:
    id: str
    name: str
    permissions: int = 0  # the person's permissions there (Discord's bitfield), at sign-in


@dataclass(frozen=True)
class WebSession:
    user_id: str
    user_name: str
    guilds: tuple[WebGuild, ...]  # every guild the person is in, at sign-in
    csrf_token: str
    created_at: float
    expires_at: float


class WebRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    # Sessions

    async def add_session(
        self, token_hash: str, user_id: str, user_name: str, guilds: list[WebGuild], csrf: str, ttl_s: float
    ) -> None:
        now = time.time()
        body = [{"id": g.id, "name": g.name, "permissions": g.permissions} for g in guilds]
        await self.store._insert(
            "web_sessions",
            {
                "token_hash": token_hash,
                "user_id": user_id,
                "user_name": user_name,
                "guilds_json": json.dumps(body),
                "csrf_token": csrf,
                "created_at": now,
                "expires_at": now + ttl_s,
            },
        )

    async def session(self, token_hash: str) -> WebSession | None:
        """A live session (an expired one is as good as none)."""
        row = await self.store._one(
            "SELECT * FROM web_sessions WHERE token_hash = ? AND expires_at > ?", (token_hash, time.time())
        )
        if row is None:
            return None
        guilds = tuple(
            WebGuild(str(g["id"]), str(g["name"]), int(g["permissions"]))
            for g in json.loads(row["guilds_json"])
        )
        return WebSession(
            row["user_id"], row["user_name"], guilds, row["csrf_token"], row["created_at"], row["expires_at"]
        )

    async def end_session(self, token_hash: str) -> None:
        await self.store._write("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))

    async def purge_sessions(self) -> int:
        return await self.store._write("DELETE FROM web_sessions WHERE expires_at <= ?", (time.time(),))

    # The bot's guilds

    async def set_bot_guilds(self, guilds: dict[str, str]) -> None:
        """The guilds the bot is in now (id -> name), replacing what was known."""
        async with self.store._transaction() as tx:
            await tx.execute("DELETE FROM bot_guilds", ())
            now = time.time()
            for guild_id, name in guilds.items():
                await tx.execute(
                    "INSERT INTO bot_guilds (id, name, joined_at) VALUES (?, ?, ?)", (guild_id, name, now)
                )

    async def bot_joined(self, guild_id: str, name: str) -> None:
        await self.store._write(
            "INSERT INTO bot_guilds (id, name, joined_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            (guild_id, name, time.time()),
        )

    async def bot_left(self, guild_id: str) -> None:
        await self.store._write("DELETE FROM bot_guilds WHERE id = ?", (guild_id,))

    async def bot_guild_ids(self) -> set[str]:
        return {str(r["id"]) for r in await self.store._all("SELECT id FROM bot_guilds")}

    # Generations started on the web

    async def add_generation(self, generation_id: str, user_id: str) -> None:
        await self.store._write(
            "INSERT INTO web_generations (generation_id, user_id, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (generation_id, user_id, time.time()),
        )

    async def unfinished_generations(self) -> list[str]:
        rows = await self.store._all(
            "SELECT w.generation_id FROM web_generations w JOIN generations g ON g.id = w.generation_id "
            "WHERE g.status IN ('queued', 'running') ORDER BY w.created_at"
        )
        return [str(r["generation_id"]) for r in rows]
