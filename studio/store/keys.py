"""REST API rows: bearer tokens (hashed) and the generations started with them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from studio.entities import ApiGeneration, ApiKey
from studio.store.backend import Row

if TYPE_CHECKING:
    from studio.store.repository import Store

# Deliveries promised into a Discord thread whose status message nobody has posted yet.
# API and web generations promised to a thread: the bot posts their status messages.
_PROMISED = (
    "SELECT d.generation_id, d.channel_id FROM ("
    "SELECT generation_id, created_at FROM api_generations "
    "UNION ALL SELECT generation_id, created_at FROM web_generations) AS a "
    "JOIN deliveries AS d ON d.generation_id = a.generation_id "
    "WHERE d.status_message_id IS NULL AND d.delivered_at IS NULL ORDER BY a.created_at"
)


class KeyRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, key_id: str, **row: Any) -> ApiKey:
        await self.store._insert("api_keys", {"id": key_id, **row, "created_at": time.time()})
        found = await self.get(key_id)
        assert found is not None
        return found

    async def get(self, key_id: str) -> ApiKey | None:
        row = await self.store._one("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        return _key(row) if row else None

    async def by_hash(self, token_hash: str) -> ApiKey | None:
        row = await self.store._one("SELECT * FROM api_keys WHERE token_hash = ?", (token_hash,))
        return _key(row) if row else None

    async def live_of(self, owner_id: str) -> list[ApiKey]:
        rows = await self.store._all(
            "SELECT * FROM api_keys WHERE owner_id = ? AND revoked_at IS NULL ORDER BY created_at",
            (owner_id,),
        )
        return [_key(r) for r in rows]

    async def live(self) -> list[ApiKey]:
        rows = await self.store._all("SELECT * FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at")
        return [_key(r) for r in rows]

    async def revoke(self, owner_id: str, key_id: str) -> bool:
        """Revoke a live key of this owner; its pending webhooks are dropped with it."""
        changed = await self.store._write(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND owner_id = ? AND revoked_at IS NULL",
            (time.time(), key_id, owner_id),
        )
        if changed:
            await self.store._write(
                "UPDATE api_generations SET webhook_status = 'failed', webhook_error = 'key revoked' "
                "WHERE key_id = ? AND webhook_status = 'pending'",
                (key_id,),
            )
        return changed > 0

    async def touch(self, key_id: str, when: float) -> None:
        await self.store._write("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (when, key_id))

    # Generations started through the API

    async def add_generation(self, generation_id: str, key_id: str, webhook_url: str | None) -> None:
        await self.store._write(
            "INSERT INTO api_generations (generation_id, key_id, webhook_url, webhook_status, "
            "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (generation_id, key_id, webhook_url, "pending" if webhook_url else "none", time.time()),
        )

    async def generation(self, generation_id: str) -> ApiGeneration | None:
        row = await self.store._one("SELECT * FROM api_generations WHERE generation_id = ?", (generation_id,))
        return _generation(row) if row else None

    async def unfinished_generations(self) -> list[ApiGeneration]:
        """API generations still running, or whose webhook is still to be sent: the API follows them."""
        rows = await self.store._all(
            "SELECT a.* FROM api_generations a JOIN generations g ON g.id = a.generation_id "
            "WHERE g.status IN ('queued', 'running') OR a.webhook_status = 'pending' ORDER BY a.created_at"
        )
        return [_generation(r) for r in rows]

    async def webhook_attempted(self, generation_id: str, status: str, error: str | None) -> None:
        """One more attempt, and the webhook's status after it (while it is still pending)."""
        await self.store._write(
            "UPDATE api_generations SET webhook_attempts = webhook_attempts + 1, webhook_status = ?, "
            "webhook_error = ? WHERE generation_id = ? AND webhook_status = 'pending'",
            (status, error, generation_id),
        )

    async def promised_threads(self) -> list[tuple[str, str]]:
        """(generation id, thread id) of API and web generations whose thread has no status message yet."""
        rows = await self.store._all(_PROMISED)
        return [(str(r["generation_id"]), str(r["channel_id"])) for r in rows]


def _key(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        owner_id=row["owner_id"],
        owner_name=row["owner_name"],
        server=row["server"],
        name=row["name"],
        prefix=row["prefix"],
        webhook_secret=row["webhook_secret"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def _generation(row: Row) -> ApiGeneration:
    return ApiGeneration(
        generation_id=row["generation_id"],
        key_id=row["key_id"],
        webhook_url=row["webhook_url"],
        webhook_status=row["webhook_status"],
        webhook_attempts=row["webhook_attempts"],
        webhook_error=row["webhook_error"],
        created_at=row["created_at"],
    )
