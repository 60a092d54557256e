"""Quota rows: what each person was charged (once per piece of work) and servers' role limits."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio.store.repository import Store

NO_SERVER = ""  # the server column of work done outside any server (NULL compares badly)


class QuotaRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def charge(
        self, charge_id: str, user_id: str, server: str | None, seconds: float, at: float
    ) -> bool:
        """Charge ``seconds`` once under ``charge_id``; False when it was already charged."""
        changed = await self.store._write(
            "INSERT INTO quota_charges (id, user_id, server, seconds, charged_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (charge_id, user_id, server or NO_SERVER, seconds, at),
        )
        return changed > 0

    async def used_since(self, user_id: str, server: str | None, since: float) -> float:
        row = await self.store._one(
            "SELECT COALESCE(SUM(seconds), 0) AS used FROM quota_charges "
            "WHERE user_id = ? AND server = ? AND charged_at >= ?",
            (user_id, server or NO_SERVER, since),
        )
        return float(row["used"]) if row is not None else 0.0

    async def role_limits(self, server: str) -> dict[str, float]:
        rows = await self.store._all(
            "SELECT role_id, seconds FROM quota_role_limits WHERE server = ? ORDER BY set_at", (server,)
        )
        return {str(r["role_id"]): float(r["seconds"]) for r in rows}

    async def set_role_limit(self, server: str, role_id: str, seconds: float | None, set_by: str) -> None:
        """``seconds`` None removes the role's limit."""
        if seconds is None:
            await self.store._write(
                "DELETE FROM quota_role_limits WHERE server = ? AND role_id = ?", (server, role_id)
            )
            return
        await self.store._write(
            "INSERT INTO quota_role_limits (server, role_id, seconds, set_by, set_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (server, role_id) DO UPDATE SET seconds = excluded.seconds, "
            "set_by = excluded.set_by, set_at = excluded.set_at",
            (server, role_id, seconds, set_by, time.time()),
        )
