"""Daily GPU-second quotas: reset times, the limit a person has, and the sentences they see."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from studio.entities import Requester
from studio.errors import InvalidRecipe, NotYours
from studio.quotas import (
    DailyQuotaReached,
    Quotas,
    QuotaStanding,
    effective_limit,
    last_reset,
    next_reset,
    status_line,
)
from studio.settings import load_settings
from studio.store import Store

SERVER = "900"
BOOSTERS, ARTISTS = "901", "902"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "hour", "last", "following"),
    [
        (at(2, 13, 30), 0, at(2, 0), at(3, 0)),  # midnight UTC
        (at(2, 0), 0, at(2, 0), at(3, 0)),  # exactly at the reset: a new day has begun
        (at(2, 3), 6, at(1, 6), at(2, 6)),  # before today's reset hour: yesterday's window
        (at(2, 6), 6, at(2, 6), at(3, 6)),
        (at(31, 23, 59), 0, at(31, 0), datetime(2027, 1, 1, tzinfo=UTC)),  # across a year
    ],
)
def test_the_day_resets_at_the_reset_hour_utc(
    now: datetime, hour: int, last: datetime, following: datetime
) -> None:
    assert last_reset(now, hour) == last
    assert next_reset(now, hour) == following


def test_reset_times_of_a_time_in_another_zone_are_the_same_instant() -> None:
    from datetime import timedelta, timezone

    tokyo = at(2, 13).astimezone(timezone(timedelta(hours=9)))  # 22:00 there
    assert last_reset(tokyo, 0) == at(2, 0)


def test_a_servers_everyone_limit_replaces_the_default_and_roles_only_raise_it() -> None:
    limits = {SERVER: 600.0, BOOSTERS: 3600.0, ARTISTS: 300.0}
    assert effective_limit(60, SERVER, frozenset(), {}) == 60  # the studio's default
    assert effective_limit(60, SERVER, frozenset({SERVER}), limits) == 600  # @everyone here
    assert effective_limit(60, SERVER, frozenset({SERVER, BOOSTERS}), limits) == 3600
    assert effective_limit(60, SERVER, frozenset({ARTISTS}), limits) == 600  # a lower role: no lower
    assert effective_limit(60, SERVER, frozenset({"903"}), {**limits, "903": 0}) == 0  # unlimited role
    assert effective_limit(0, SERVER, frozenset({BOOSTERS}), {BOOSTERS: 3600.0}) == 0  # default unlimited
    assert effective_limit(60, None, frozenset({BOOSTERS}), {}) == 60  # outside any server


def test_the_refusal_says_what_was_used_and_when_it_resets() -> None:
    standing = QuotaStanding(used_s=61.25, limit_s=60, resets_at=at(3, 0))
    refused = DailyQuotaReached(standing, now=at(2, 22))
    assert str(refused) == (
        "You have used your daily GPU time here: 61.2 s of 60.0 s. It resets at 2026-12-03T00:00:00Z."
    )
    stamp = int(at(3, 0).timestamp())
    assert refused.discord_text.endswith(f"It resets <t:{stamp}:R> (<t:{stamp}:t>).")
    assert refused.retry_after_s == 2 * 3600
    assert standing.reached and not QuotaStanding(59.9, 60, at(3, 0)).reached
    assert not QuotaStanding(10_000, 0, at(3, 0)).reached  # 0: unlimited
    assert "30.0 s of 60 min · resets <t:" in status_line(QuotaStanding(30, 3600, at(3, 0)))
    assert status_line(QuotaStanding(7200, 0, at(3, 0))) == "**GPU time today:** 2.0 h (no daily limit)"


async def test_usage_is_charged_once_per_generation_and_counted_per_server(database: Path | str) -> None:
    async with Store(database) as store:
        rows = store.quotas
        noon = at(2, 12).timestamp()
        assert await rows.charge("generation:a", "discord:1", SERVER, 6.0, noon)
        assert not await rows.charge("generation:a", "discord:1", SERVER, 6.0, noon)  # redelivered
        await rows.charge("generation:b", "discord:1", None, 4.0, noon)  # outside any server
        await rows.charge("generation:c", "discord:1", SERVER, 5.0, at(1, 23).timestamp())  # yesterday
        assert await rows.used_since("discord:1", SERVER, at(2, 0).timestamp()) == 6.0
        assert await rows.used_since("discord:1", None, at(2, 0).timestamp()) == 4.0
        assert await rows.used_since("discord:2", SERVER, 0) == 0.0


async def test_only_server_admins_set_role_limits(tmp_path: Path, database: Path | str) -> None:
    settings = load_settings(data_dir=tmp_path, daily_gpu_seconds=10)
    async with Store(database) as store:
        quotas = Quotas(settings, store)
        admin = Requester("discord:1", "ada", admin=True, server=SERVER)
        with pytest.raises(NotYours, match="Manage Server"):
            await quotas.set_role_limit(Requester("discord:2", "bo", server=SERVER), BOOSTERS, 3600)
        with pytest.raises(InvalidRecipe, match="between 0"):
            await quotas.set_role_limit(admin, BOOSTERS, -1)
        assert await quotas.set_role_limit(admin, BOOSTERS, 3600) == {BOOSTERS: 3600.0}
        assert await quotas.set_role_limit(admin, BOOSTERS, 1800) == {BOOSTERS: 1800.0}  # replaced
        booster = Requester("discord:3", "cy", server=SERVER, roles=frozenset({SERVER, BOOSTERS}))
        assert (await quotas.standing(booster)).limit_s == 1800
        assert await quotas.set_role_limit(admin, BOOSTERS, None) == {}
        assert (await quotas.standing(booster)).limit_s == 10
        await quotas.check(booster)  # nothing used yet
