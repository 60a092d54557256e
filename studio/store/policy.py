"""Content policy rows: each server's prompt blocklist, and the safety classifier's verdicts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from studio.policy import PolicyRule

if TYPE_CHECKING:
    from studio.store.repository import Store


class PolicyRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def rules(self, server: str) -> list[PolicyRule]:
        rows = await self.store._all(
            "SELECT kind, pattern, added_by FROM policy_rules WHERE server = ? ORDER BY created_at, pattern",
            (server,),
        )
        return [PolicyRule(r["kind"], r["pattern"], r["added_by"]) for r in rows]

    async def add(self, server: str, rule: PolicyRule, added_by: str) -> None:
        await self.store._write(
            "INSERT INTO policy_rules (server, kind, pattern, added_by, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (server, kind, pattern) DO NOTHING",
            (server, rule.kind, rule.pattern, added_by, time.time()),
        )

    async def remove(self, server: str, kind: str, pattern: str) -> bool:
        changed = await self.store._write(
            "DELETE FROM policy_rules WHERE server = ? AND kind = ? AND pattern = ?", (server, kind, pattern)
        )
        return changed > 0

    async def record_verdicts(
        self, generation_id: str, verdicts: Sequence[tuple[int, bool, str | None, float | None]]
    ) -> None:
        """Each image's safety verdict (index, flagged, label, score); writing it twice is harmless."""
        for index, flagged, label, score in verdicts:
            await self.store._write(
                "UPDATE images SET flagged = ?, safety_label = ?, safety_score = ? "
                "WHERE generation_id = ? AND idx = ?",
                (int(flagged), label, score, generation_id, index),
            )

    async def set_safe_grid(self, generation_id: str, artifact: str) -> None:
        await self.store._write(
            "UPDATE generations SET safe_grid_artifact = ? WHERE id = ?", (artifact, generation_id)
        )

    async def safe_grid(self, generation_id: str) -> str | None:
        """The blurred grid's artifact; "" when flagged images could not be blurred (post nothing);
        None when nothing was flagged."""
        row = await self.store._one(
            "SELECT safe_grid_artifact FROM generations WHERE id = ?", (generation_id,)
        )
        return None if row is None or row["safe_grid_artifact"] is None else str(row["safe_grid_artifact"])

    async def flagged_indices(self, generation_id: str) -> list[int]:
        rows = await self.store._all(
            "SELECT idx FROM images WHERE generation_id = ? AND flagged = 1 ORDER BY idx", (generation_id,)
        )
        return [int(r["idx"]) for r in rows]
