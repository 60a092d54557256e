"""Acknowledged commands (resumed after a restart) and the upload limit each server allows."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from studio.store.backend import Row

if TYPE_CHECKING:
    from studio.store.repository import Store


@dataclass(frozen=True)
class Acknowledged:
    """A command Discord was told "thinking…" about: enough to finish it from scratch."""

    id: str
    application_id: str
    token: str
    command: str
    options: dict[str, Any]
    user_id: str
    requester: dict[str, Any]
    guild_id: str | None
    channel_id: str
    upload_limit: int | None
    generation_id: str
    thread_id: str | None
    created_at: float
    done_at: float | None = None
    outcome: str | None = None


class InteractionRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, ack: Acknowledged) -> bool:
        """Record it once (Discord may redeliver an interaction); False if it was known."""
        changed = await self.store._write(
            "INSERT INTO interactions (id, application_id, token, command, options_json, "
            "user_id, requester_json, guild_id, channel_id, upload_limit, generation_id, thread_id, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                ack.id,
                ack.application_id,
                ack.token,
                ack.command,
                json.dumps(ack.options),
                ack.user_id,
                json.dumps(ack.requester),
                ack.guild_id,
                ack.channel_id,
                ack.upload_limit,
                ack.generation_id,
                ack.thread_id,
                ack.created_at,
            ),
        )
        return changed > 0

    async def get(self, interaction_id: str) -> Acknowledged | None:
        row = await self.store._one("SELECT * FROM interactions WHERE id = ?", (interaction_id,))
        return _acknowledged(row) if row else None

    async def pending(self) -> list[Acknowledged]:
        rows = await self.store._all("SELECT * FROM interactions WHERE done_at IS NULL ORDER BY created_at")
        return [_acknowledged(r) for r in rows]

    async def set_thread(self, interaction_id: str, thread_id: str) -> None:
        await self.store._write(
            "UPDATE interactions SET thread_id = ? WHERE id = ?", (thread_id, interaction_id)
        )

    async def finish(self, interaction_id: str, outcome: str) -> bool:
        """Mark it done once; False if it already was. Its token (a credential) is not kept."""
        changed = await self.store._write(
            "UPDATE interactions SET done_at = ?, outcome = ?, token = '' WHERE id = ? AND done_at IS NULL",
            (time.time(), outcome, interaction_id),
        )
        return changed > 0

    async def forget_before(self, when: float) -> None:
        """Done rows older than ``when`` serve no one (their tokens are long dead)."""
        await self.store._write(
            "DELETE FROM interactions WHERE done_at IS NOT NULL AND created_at < ?", (when,)
        )

    # Upload limits per server

    async def set_upload_limit(self, server: str, size: int) -> None:
        await self.store._write(
            "INSERT INTO upload_limits (server, bytes, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(server) DO UPDATE SET bytes = excluded.bytes, updated_at = excluded.updated_at",
            (server, size, time.time()),
        )

    async def upload_limits(self) -> dict[str, int]:
        rows = await self.store._all("SELECT server, bytes FROM upload_limits")
        return {str(r["server"]): int(r["bytes"]) for r in rows}


def _acknowledged(row: Row) -> Acknowledged:
    return Acknowledged(
        id=row["id"],
        application_id=row["application_id"],
        token=row["token"],
        command=row["command"],
        options=json.loads(row["options_json"]),
        user_id=row["user_id"],
        requester=json.loads(row["requester_json"]),
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        upload_limit=row["upload_limit"],
        generation_id=row["generation_id"],
        thread_id=row["thread_id"],
        created_at=row["created_at"],
        done_at=row["done_at"],
        outcome=row["outcome"],
    )
