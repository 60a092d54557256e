"""Evolutions (/evolve): rounds of a grid voted on in a poll, the winner varied into the next.

Every step is a compare-and-set on the evolution's ``(state, round)``: whoever hears a poll's
end first (Discord's end, our time limit, the owner's button, a restarted bot) moves it on, and
the others change nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from studio.errors import NotFound
from studio.store.backend import Row

if TYPE_CHECKING:
    from studio.store.repository import Store

STATES = ("generating", "polling", "voting", "done", "failed")


@dataclass(frozen=True)
class Evolution:
    id: str
    owner_id: str
    requester: dict[str, object]
    server: str | None
    project_id: str
    thread_id: str
    prompt: str
    rounds: int
    minutes: int
    round: int
    state: str
    generation_id: str
    poll_message_id: str | None
    closes_at: float | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class EvolutionRound:
    evolution_id: str
    round: int
    generation_id: str
    poll_message_id: str | None
    winner: int | None
    votes: list[int] | None
    closed_at: float | None


class EvolutionRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, evolution: Evolution) -> bool:
        """Record a new evolution and its first round; False when that id exists (a resumed command)."""
        async with self.store._transaction() as tx:
            added = await tx.execute(
                "INSERT INTO evolutions (id, owner_id, requester, server, project_id, thread_id, "
                "prompt, rounds, minutes, round, state, generation_id, poll_message_id, closes_at, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (
                    evolution.id,
                    evolution.owner_id,
                    json.dumps(evolution.requester),
                    evolution.server,
                    evolution.project_id,
                    evolution.thread_id,
                    evolution.prompt,
                    evolution.rounds,
                    evolution.minutes,
                    evolution.round,
                    evolution.state,
                    evolution.generation_id,
                    evolution.poll_message_id,
                    evolution.closes_at,
                    evolution.created_at,
                    evolution.updated_at,
                ),
            )
            if added:
                await tx.execute(
                    "INSERT INTO evolution_rounds (evolution_id, round, generation_id) VALUES (?, ?, ?)",
                    (evolution.id, evolution.round, evolution.generation_id),
                )
        return bool(added)

    async def get(self, evolution_id: str) -> Evolution:
        row = await self.store._one("SELECT * FROM evolutions WHERE id = ?", (evolution_id,))
        if row is None:
            raise NotFound("That evolution does not exist (any more).")
        return _evolution(row)

    async def by_generation(self, generation_id: str) -> Evolution | None:
        row = await self.store._one("SELECT * FROM evolutions WHERE generation_id = ?", (generation_id,))
        return _evolution(row) if row is not None else None

    async def by_poll(self, poll_message_id: str) -> Evolution | None:
        row = await self.store._one("SELECT * FROM evolutions WHERE poll_message_id = ?", (poll_message_id,))
        return _evolution(row) if row is not None else None

    async def unfinished(self) -> list[Evolution]:
        rows = await self.store._all(
            "SELECT * FROM evolutions WHERE state IN ('generating', 'polling', 'voting') ORDER BY created_at"
        )
        return [_evolution(r) for r in rows]

    async def rounds_of(self, evolution_id: str) -> list[EvolutionRound]:
        rows = await self.store._all(
            "SELECT * FROM evolution_rounds WHERE evolution_id = ? ORDER BY round", (evolution_id,)
        )
        return [_round(r) for r in rows]

    async def claim_poll(self, evolution_id: str, round_no: int) -> bool:
        """generating -> polling: this caller posts the round's poll (once)."""
        return await self._move(evolution_id, round_no, "generating", "polling")

    async def poll_posted(self, evolution_id: str, round_no: int, message_id: str, closes_at: float) -> bool:
        """polling -> voting, with the poll's message and our time limit."""
        changed = await self.store._write(
            "UPDATE evolutions SET state = 'voting', poll_message_id = ?, closes_at = ?, updated_at = ? "
            "WHERE id = ? AND round = ? AND state = 'polling'",
            (message_id, closes_at, time.time(), evolution_id, round_no),
        )
        await self.store._write(
            "UPDATE evolution_rounds SET poll_message_id = ? WHERE evolution_id = ? AND round = ?",
            (message_id, evolution_id, round_no),
        )
        return changed == 1

    async def close_round(
        self, evolution_id: str, round_no: int, winner: int, votes: list[int], next_generation: str | None
    ) -> bool:
        """voting -> generating the next round (``next_generation``), or -> done after the last.

        One transaction: the round's winner and the evolution's next step land together, and only
        for the caller whose compare-and-set matched. False: someone already closed this round."""
        now = time.time()
        async with self.store._transaction(lock=f"evolution:{evolution_id}") as tx:
            if next_generation is None:
                changed = await tx.execute(
                    "UPDATE evolutions SET state = 'done', closes_at = NULL, updated_at = ? "
                    "WHERE id = ? AND round = ? AND state = 'voting'",
                    (now, evolution_id, round_no),
                )
            else:
                changed = await tx.execute(
                    "UPDATE evolutions SET state = 'generating', round = ?, generation_id = ?, "
                    "poll_message_id = NULL, closes_at = NULL, updated_at = ? "
                    "WHERE id = ? AND round = ? AND state = 'voting'",
                    (round_no + 1, next_generation, now, evolution_id, round_no),
                )
            if changed != 1:
                return False
            await tx.execute(
                "UPDATE evolution_rounds SET winner = ?, votes = ?, closed_at = ? "
                "WHERE evolution_id = ? AND round = ?",
                (winner, json.dumps(votes), now, evolution_id, round_no),
            )
            if next_generation is not None:
                await tx.execute(
                    "INSERT INTO evolution_rounds (evolution_id, round, generation_id) VALUES (?, ?, ?) "
                    "ON CONFLICT (evolution_id, round) DO NOTHING",
                    (evolution_id, round_no + 1, next_generation),
                )
        return True

    async def fail(self, evolution_id: str, round_no: int) -> bool:
        changed = await self.store._write(
            "UPDATE evolutions SET state = 'failed', closes_at = NULL, updated_at = ? "
            "WHERE id = ? AND round = ? AND state IN ('generating', 'polling', 'voting')",
            (time.time(), evolution_id, round_no),
        )
        return changed == 1

    async def _move(self, evolution_id: str, round_no: int, before: str, after: str) -> bool:
        changed = await self.store._write(
            "UPDATE evolutions SET state = ?, updated_at = ? WHERE id = ? AND round = ? AND state = ?",
            (after, time.time(), evolution_id, round_no, before),
        )
        return changed == 1


def _evolution(row: Row) -> Evolution:
    data = {key: row[key] for key in row.keys()}  # noqa: SIM118 (sqlite rows have keys())
    data["requester"] = json.loads(data["requester"])
    for key in ("rounds", "minutes", "round"):
        data[key] = int(data[key])
    return Evolution(**data)


def _round(row: Row) -> EvolutionRound:
    votes = row["votes"]
    return EvolutionRound(
        evolution_id=row["evolution_id"],
        round=int(row["round"]),
        generation_id=row["generation_id"],
        poll_message_id=row["poll_message_id"],
        winner=None if row["winner"] is None else int(row["winner"]),
        votes=None if votes is None else [int(v) for v in json.loads(votes)],
        closed_at=row["closed_at"],
    )
