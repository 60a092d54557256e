"""Finishing results: upscales, grades (previewed, then applied) and exports."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from studio.entities import Finish
from studio.errors import NotFound
from studio.store.backend import Row

if TYPE_CHECKING:
    from studio.store.repository import Store


class FinishRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, finish_id: str, **row: Any) -> Finish:
        await self.store._insert("finishes", {"id": finish_id, **row, "created_at": time.time()})
        return await self.get(finish_id)

    async def get(self, finish_id: str) -> Finish:
        row = await self.store._one("SELECT * FROM finishes WHERE id = ?", (finish_id,))
        if row is None:
            raise NotFound("That result does not exist (any more).")
        return _finish(row)

    async def set_preview(self, finish_id: str, preview: str) -> None:
        await self.store._write("UPDATE finishes SET preview = ? WHERE id = ?", (preview, finish_id))

    async def set_applied(self, finish_id: str, artifact: str, size: tuple[int, int]) -> None:
        """A previewed grade, made at full size: once (a second Apply keeps the first result)."""
        await self.store._write(
            "UPDATE finishes SET artifact = ?, width = ?, height = ?, applied_at = ? "
            "WHERE id = ? AND artifact IS NULL",
            (artifact, size[0], size[1], time.time(), finish_id),
        )

    async def of_owner(self, owner_id: str, limit: int = 50) -> list[Finish]:
        rows = await self.store._all(
            "SELECT * FROM finishes WHERE owner_id = ? ORDER BY created_at DESC LIMIT ?", (owner_id, limit)
        )
        return [_finish(r) for r in rows]


def _finish(row: Row) -> Finish:
    return Finish(**{key: row[key] for key in row.keys()})  # noqa: SIM118 (sqlite rows have keys())
