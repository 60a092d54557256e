"""Acknowledged commands that must survive a restart, and the upload limit of each server.

A front end records a command before it tells the person "thinking…", links the generation it
starts (its id is chosen at record time, so a resumed command never submits it twice) and marks
the command done once it answered. On start it finishes what is still pending, within the
15 minutes Discord keeps an interaction's token alive.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace

from studio.entities import Generation, Requester
from studio.errors import NotFound
from studio.store import Store
from studio.store.interactions import Acknowledged

TOKEN_LIFETIME_S = 15 * 60.0  # Discord: an interaction token answers for 15 minutes
KEEP_DONE_S = 24 * 3600.0


def requester_row(requester: Requester) -> dict[str, object]:
    row = asdict(requester)
    row["roles"] = sorted(requester.roles)
    return row


def requester_of_row(row: dict[str, object]) -> Requester:
    roles = row.get("roles") or []
    assert isinstance(roles, list)
    return Requester(**{**row, "roles": frozenset(str(r) for r in roles)})  # type: ignore[arg-type]


class Acknowledgements:
    """Recording and resuming commands. Marking one done (``store.interactions.finish``) and the
    servers' upload limits (``store.interactions``) are the front end's own bookkeeping."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, ack: Acknowledged) -> Acknowledged:
        """Record a command; a redelivered one keeps its first record (and generation id)."""
        await self.store.interactions.add(ack)
        found = await self.store.interactions.get(ack.id)
        assert found is not None
        return found

    async def pending(self, now: float | None = None) -> tuple[list[Acknowledged], list[Acknowledged]]:
        """Commands not answered yet: (still answerable, too old to answer)."""
        now = time.time() if now is None else now
        await self.store.interactions.forget_before(now - KEEP_DONE_S)
        rows = await self.store.interactions.pending()
        live = [a for a in rows if now - a.created_at < TOKEN_LIFETIME_S]
        return live, [a for a in rows if now - a.created_at >= TOKEN_LIFETIME_S]

    async def opened_thread(self, ack: Acknowledged, thread_id: str) -> Acknowledged:
        await self.store.interactions.set_thread(ack.id, thread_id)
        return replace(ack, thread_id=thread_id)

    async def submitted(self, ack: Acknowledged) -> Generation | None:
        """The generation this command started, if it got that far."""
        try:
            return await self.store.get_generation(ack.generation_id)
        except NotFound:
            return None
