"""The Forge's rows: LoRA training runs (which become custom models) and who may train."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from studio.entities import Lora, TrainingStatus
from studio.errors import NameTaken, NotFound
from studio.store.backend import Row, UniqueViolation

if TYPE_CHECKING:
    from studio.store.repository import Store


class LoraRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, lora_id: str, **row: Any) -> None:
        """Record a new, queued run; NameTaken if a live model or run holds that name and version."""
        key = str(row["name"]).lower()
        try:
            await self.store._insert(
                "loras",
                {"id": lora_id, **row, "name_key": key, "status": "queued", "created_at": time.time()},
            )
        except UniqueViolation:
            raise NameTaken(str(row["name"])) from None

    async def add_imported(self, lora_id: str, **row: Any) -> None:
        """Record a LoRA imported from a file: a usable model at once, no training run behind it."""
        key = str(row["name"]).lower()
        now = time.time()
        # An owner the operator imports for may be new here: known by id until they show up.
        await self.store._write(
            "INSERT INTO users (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (row["owner_id"], row["owner_id"], now),
        )
        try:
            await self.store._insert(
                "loras",
                {**row, "id": lora_id, "name_key": key, "status": "done"}
                | {"created_at": now, "finished_at": now},
            )
        except UniqueViolation:
            raise NameTaken(str(row["name"])) from None

    async def delete_unqueued(self, lora_id: str) -> None:
        """Only for a run whose job never reached the queue."""
        await self.store._write("DELETE FROM loras WHERE id = ? AND status = 'queued'", (lora_id,))

    async def count_requeue(self, lora_id: str, limit: int) -> bool:
        """Count one more re-enqueue of an unfinished run's job; False once ``limit`` were made."""
        changed = await self.store._write(
            "UPDATE loras SET requeues = requeues + 1 "
            "WHERE id = ? AND status IN ('queued', 'running', 'retrying') AND requeues < ?",
            (lora_id, limit),
        )
        return changed > 0

    async def dataset(self, lora_id: str) -> dict[str, list[str]] | None:
        """The run's stored dataset (image digests and captions), None if it was never stored."""
        row = await self.store._one("SELECT dataset_json FROM loras WHERE id = ?", (lora_id,))
        if row is None or row["dataset_json"] is None:
            return None
        found: dict[str, list[str]] = json.loads(row["dataset_json"])
        return found

    async def get(self, lora_id: str) -> Lora:
        row = await self.store._one("SELECT * FROM loras WHERE id = ?", (lora_id,))
        if row is None:
            raise NotFound("That training run does not exist.")
        return _lora(row)

    async def named(self, name: str) -> list[Lora]:
        """Every live (not failed, cancelled or deleted) run or model of that name, newest first."""
        rows = await self.store._all(
            "SELECT * FROM loras WHERE name_key = ? AND deleted_at IS NULL "
            "AND status NOT IN ('failed', 'cancelled') ORDER BY version DESC",
            (name.lower(),),
        )
        return [_lora(r) for r in rows]

    async def last_version(self, name: str) -> int:
        row = await self.store._one("SELECT MAX(version) AS v FROM loras WHERE name_key = ?", (name.lower(),))
        return int(row["v"] or 0) if row else 0

    async def usable(self) -> list[Lora]:
        rows = await self.store._all(
            "SELECT * FROM loras WHERE status = 'done' AND deleted_at IS NULL ORDER BY name_key, version"
        )
        return [_lora(r) for r in rows]

    async def started_since(self, owner_id: str, since: float) -> int:
        """Runs that count against the training quota: all but the cancelled-before-start ones."""
        row = await self.store._one(
            "SELECT COUNT(*) AS n FROM loras WHERE owner_id = ? AND created_at >= ? "
            "AND NOT (status = 'cancelled' AND started_at IS NULL)",
            (owner_id, since),
        )
        return int(row["n"]) if row else 0

    async def in_flight(self, owner_id: str | None = None) -> list[Lora]:
        sql = "SELECT * FROM loras WHERE status IN ('queued', 'running', 'retrying')"
        args: tuple[Any, ...] = ()
        if owner_id is not None:
            sql += " AND owner_id = ?"
            args = (owner_id,)
        return [_lora(r) for r in await self.store._all(sql + " ORDER BY created_at", args)]

    async def mark_running(self, lora_id: str, attempt: int) -> None:
        await self.store._write(
            "UPDATE loras SET status = 'running', attempts = MAX(attempts, ?), error = NULL, "
            "step = CASE WHEN ? > attempts THEN 0 ELSE step END, "
            "started_at = COALESCE(started_at, ?) "
            "WHERE id = ? AND status IN ('queued', 'running', 'retrying')",
            (attempt, attempt, time.time(), lora_id),
        )

    async def mark_retrying(self, lora_id: str, reason: str) -> bool:
        changed = await self.store._write(
            "UPDATE loras SET status = 'retrying', error = ? WHERE id = ? AND status = 'running'",
            (reason, lora_id),
        )
        return changed > 0

    async def record_step(self, lora_id: str, step: int, loss: float | None) -> None:
        # A step proves the run is running, even if its "started" event was missed (pub/sub drops
        # what is published before the follower subscribes, and a worker can start a run first).
        await self.store._write(
            "UPDATE loras SET status = 'running', step = ?, loss = COALESCE(?, loss), error = NULL, "
            "attempts = MAX(attempts, 1), started_at = COALESCE(started_at, ?) "
            "WHERE id = ? AND status IN ('queued', 'running', 'retrying')",
            (step, loss, time.time(), lora_id),
        )

    async def end(self, lora_id: str, status: TrainingStatus, error: str | None) -> None:
        await self.store._write(
            "UPDATE loras SET status = ?, error = ?, finished_at = ? "
            "WHERE id = ? AND status IN ('queued', 'running', 'retrying')",
            (status, error, time.time(), lora_id),
        )

    async def finish(
        self,
        lora_id: str,
        artifacts: dict[str, str | None],
        size_bytes: int,
        losses: list[float],
        seconds: float,
        attempts: int,
    ) -> bool:
        """Register a finished run as a model, once; False if it was already recorded."""
        changed = await self.store._write(
            "UPDATE loras SET status = 'done', weights = ?, kohya = ?, sample = ?, comparison = ?, "
            "size_bytes = ?, losses_json = ?, seconds = ?, attempts = MAX(attempts, ?), error = NULL, "
            "step = CAST(json_extract(params_json, '$.steps') AS INTEGER), finished_at = ?, "
            "loss = ? WHERE id = ? AND status IN ('queued', 'running', 'retrying')",
            (
                artifacts["weights"],
                artifacts["kohya"],
                artifacts["sample"],
                artifacts["comparison"],
                size_bytes,
                json.dumps(losses),
                seconds,
                attempts,
                time.time(),
                losses[-1] if losses else None,
                lora_id,
            ),
        )
        return changed > 0

    async def soft_delete(self, lora_id: str) -> None:
        await self.store._write(
            "UPDATE loras SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL", (time.time(), lora_id)
        )

    async def set_status_message(self, lora_id: str, channel_id: str, message_id: str) -> None:
        await self.store._write(
            "UPDATE loras SET channel_id = ?, message_id = ? WHERE id = ?", (channel_id, message_id, lora_id)
        )

    async def mark_delivered(self, lora_id: str) -> bool:
        changed = await self.store._write(
            "UPDATE loras SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL", (time.time(), lora_id)
        )
        return changed > 0

    async def undelivered(self) -> list[Lora]:
        rows = await self.store._all(
            "SELECT * FROM loras WHERE delivered_at IS NULL AND channel_id IS NOT NULL ORDER BY created_at"
        )
        return [_lora(r) for r in rows]

    async def unfinished_without_thread(self) -> list[Lora]:
        """Runs not yet ended that no Discord thread shows (started through the API)."""
        rows = await self.store._all(
            "SELECT * FROM loras WHERE channel_id IS NULL AND status IN ('queued', 'running', 'retrying') "
            "ORDER BY created_at"
        )
        return [_lora(r) for r in rows]

    # Who may train

    async def training_roles(self, server: str) -> list[str]:
        rows = await self.store._all(
            "SELECT role_id FROM training_roles WHERE server = ? ORDER BY created_at", (server,)
        )
        return [str(r["role_id"]) for r in rows]

    async def set_training_role(self, server: str, role_id: str, added_by: str, on: bool) -> None:
        if on:
            await self.store._write(
                "INSERT INTO training_roles (server, role_id, added_by, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (server, role_id, added_by, time.time()),
            )
        else:
            await self.store._write(
                "DELETE FROM training_roles WHERE server = ? AND role_id = ?", (server, role_id)
            )


# Columns the entity does not carry: bookkeeping, the loss curve (parsed below), the dataset.
_NOT_ON_LORA = ("name_key", "losses_json", "requeues", "dataset_json")


def _lora(row: Row) -> Lora:
    columns = {key: row[key] for key in row.keys() if key not in _NOT_ON_LORA}  # noqa: SIM118
    losses = tuple(json.loads(row["losses_json"])) if row["losses_json"] else ()
    return Lora(**columns, losses=losses)
