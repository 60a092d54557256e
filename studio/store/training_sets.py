"""Rows of training sets: a person's gathered images per server (see migration 012)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio.store.repository import Store


class TrainingSetRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, owner_id: str, server: str, artifact: str, caption: str | None) -> None:
        await self.store._insert(
            "training_set_items",
            {
                "id": uuid.uuid4().hex,
                "owner_id": owner_id,
                "server": server,
                "artifact": artifact,
                "caption": caption,
                "created_at": time.time(),
            },
        )

    async def items(self, owner_id: str, server: str) -> list[tuple[str, str | None]]:
        """(artifact, caption) of each image, oldest first."""
        rows = await self.store._all(
            "SELECT artifact, caption FROM training_set_items WHERE owner_id = ? AND server = ? "
            "ORDER BY created_at, id",
            (owner_id, server),
        )
        return [(str(row["artifact"]), row["caption"]) for row in rows]

    async def count(self, owner_id: str, server: str) -> int:
        row = await self.store._one(
            "SELECT COUNT(*) AS n FROM training_set_items WHERE owner_id = ? AND server = ?",
            (owner_id, server),
        )
        return int(row["n"]) if row else 0

    async def clear(self, owner_id: str, server: str) -> int:
        return await self.store._write(
            "DELETE FROM training_set_items WHERE owner_id = ? AND server = ?", (owner_id, server)
        )
