"""The per-person cap is enforced by the store, atomically: concurrent submits cannot overshoot it."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.errors import TooManyJobs
from studio.generations import GenerationPlan
from tests.integration.workers import Deployment

ALICE = Requester("discord:1", "alice")


async def _submit_all(studio: Studio, count: int) -> tuple[int, int]:
    """``count`` submits started at the same instant; (accepted, refused)."""
    plan = GenerationPlan(ALICE, studio.generations.recipe("a crowd of lanterns --seed 1"), "default")
    outcomes = await asyncio.gather(
        *(studio.generations.start(plan) for _ in range(count)), return_exceptions=True
    )
    unexpected = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, TooManyJobs)]
    assert not unexpected, unexpected
    refused = sum(isinstance(o, TooManyJobs) for o in outcomes)
    return count - refused, refused


def _in_flight(idle: Deployment) -> int:
    with sqlite3.connect(idle.settings().database_path) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM generations WHERE owner_id = ? AND status IN ('queued', 'running')",
            (ALICE.id,),
        ).fetchone()
    return int(count)


async def test_concurrent_submits_accept_exactly_the_cap(idle: Deployment) -> None:
    async with open_studio(idle.settings()) as studio:  # no workers: every job stays queued
        cap = studio.settings.max_jobs_per_user
        accepted, refused = await _submit_all(studio, cap + 5)
        assert (accepted, refused) == (cap, 5)
        with pytest.raises(TooManyJobs, match=f"already have {cap} jobs"):
            await studio.generations.start(
                GenerationPlan(ALICE, studio.generations.recipe("one more"), "default")
            )
    assert _in_flight(idle) == cap


async def test_two_processes_sharing_the_database_cannot_overshoot(idle: Deployment) -> None:
    """Two front ends (bot and API) on one SQLite file: each its own connection, one cap."""
    async with open_studio(idle.settings()) as bot, open_studio(idle.settings()) as api:
        cap = bot.settings.max_jobs_per_user
        outcomes = await asyncio.gather(_submit_all(bot, cap), _submit_all(api, cap))
        assert sum(accepted for accepted, _ in outcomes) == cap
    assert _in_flight(idle) == cap


async def test_a_checked_batch_is_held_to_its_own_cap(idle: Deployment) -> None:
    """API batches check the whole batch first, then each row is held to the batch cap (not 3)."""
    async with open_studio(idle.settings()) as studio:
        plan = GenerationPlan(ALICE, studio.generations.recipe("rows of houses"), "default", limit=6)
        await studio.generations.check_capacity(ALICE, adding=5, limit=6)
        for _ in range(5):
            await studio.generations.start(plan)
        await studio.generations.start(plan)
        with pytest.raises(TooManyJobs):
            await studio.generations.start(plan)
    assert _in_flight(idle) == 6
