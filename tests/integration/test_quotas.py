"""Daily GPU-second quotas through real Redis and a real worker: charged once, then refused."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import uuid
from datetime import UTC, datetime

import pytest
from PIL import Image

from studio.app import open_studio
from studio.entities import Requester
from studio.quotas import DailyQuotaReached, next_reset
from tests.integration.workers import Deployment

SERVER = "4242"


def charges(deployment: Deployment, user_id: str) -> list[tuple[str, float]]:
    with sqlite3.connect(deployment.settings().database_path) as db:
        rows = db.execute("SELECT id, seconds FROM quota_charges WHERE user_id = ?", (user_id,)).fetchall()
    return [(str(charge_id), float(seconds)) for charge_id, seconds in rows]


def person(name: str) -> Requester:
    return Requester(f"discord:{uuid.uuid4().int % 10**12}", name, server=SERVER)


async def test_usage_is_charged_once_and_a_person_at_their_quota_is_refused_until_the_reset(
    deployment: Deployment,
) -> None:
    await deployment.wait_ready()
    # A tiny quota: one generation of the tiny model uses it up.
    settings = deployment.settings().model_copy(update={"daily_gpu_seconds": 0.001, "quota_reset_hour": 5})
    alice, bob = person("alice"), person("bob")
    # Two front ends (bot and API) on one database follow the same generation and both record it.
    async with open_studio(settings) as bot, open_studio(settings) as api:
        generation = await bot.generations.imagine(alice, "a lighthouse at dusk --seed 4")
        ended = await asyncio.gather(bot.results.follow(generation.id), api.results.follow(generation.id))
        recorded = ended[0].generation
        worker_time = (recorded.worker_seconds or 0) + (recorded.load_seconds or 0)
        assert worker_time > 0.001
        assert charges(deployment, alice.id) == [(f"generation:{generation.id}", pytest.approx(worker_time))]

        # Recorded again from the result Redis still holds (as after a crash between the charge
        # and the record): still one charge.
        with sqlite3.connect(settings.database_path) as db:
            db.execute("UPDATE generations SET status = 'running' WHERE id = ?", (generation.id,))
        again = await bot.results.collect()
        assert generation.id in [f.generation.id for f in again]
        assert len(charges(deployment, alice.id)) == 1

        standing = await bot.quotas.standing(alice)
        assert standing.reached and standing.used_s == pytest.approx(worker_time)
        assert standing.resets_at == next_reset(datetime.now(UTC), 5)
        with pytest.raises(DailyQuotaReached) as refused:
            await api.generations.prepare(alice, "one more lighthouse")
        iso = standing.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert str(refused.value).endswith(f"It resets at {iso}.")
        assert "You have used your daily GPU time here" in str(refused.value)
        assert 0 < refused.value.retry_after_s <= 24 * 3600

        # Another person is not refused; alice elsewhere (another server) is not either.
        other = await bot.generations.imagine(bob, "a lighthouse at dawn --seed 5")
        await bot.results.follow(other.id)
        elsewhere = Requester(alice.id, alice.name, server="4343")
        await bot.generations.prepare(elsewhere, "a lighthouse elsewhere")
        assert len(charges(deployment, bob.id)) == 1


async def test_an_upscale_is_charged_and_refused_at_the_quota(deployment: Deployment) -> None:
    await deployment.wait_ready()
    settings = deployment.settings().model_copy(update={"daily_gpu_seconds": 1e-6})
    carol = person("carol")
    source = io.BytesIO()
    Image.new("RGB", (40, 24), (200, 120, 30)).save(source, format="PNG")
    async with open_studio(settings) as studio:
        finish = await studio.finishing.upscale(
            await studio.finishing.prepare_upscale(carol, source.getvalue(), 2)
        )
        ((charge_id, seconds),) = charges(deployment, carol.id)
        assert charge_id == f"finish:{finish.id}" and seconds > 0
        with pytest.raises(DailyQuotaReached):
            await studio.finishing.prepare_upscale(carol, source.getvalue(), 2)
