"""A multi-host deployment on one PostgreSQL: the real bot and the real API, two processes with
their own connections, take concurrent work at once; every request is recorded and delivered
once, and the per-person cap holds across both front ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from studio.apikeys import ApiKeys
from studio.entities import Requester
from studio.store import Store
from tests.api.server import ApiServer
from tests.api.test_api import until_done
from tests.e2e.bot_process import BotProcess
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment
from tests.postgres import fresh_database

PEOPLE = ["alice", "bob", "mod"]


@dataclass
class TwoFrontEnds:
    fake: FakeDiscord
    deployment: Deployment
    bot: BotProcess
    api: ApiServer
    database: str


@pytest.fixture
async def on_postgres(tiny_catalogue: Path, tmp_path: Path) -> AsyncIterator[TwoFrontEnds]:
    """A fake Discord, the bot and the API on one fresh Postgres database; no inference worker
    yet (the test starts it), so what is queued stays queued until then."""
    async with fresh_database() as url:
        dep = Deployment(
            data_dir=tmp_path / "studio",
            models_file=tiny_catalogue,
            extra_env={
                "ATELIER_DATABASE_URL": url,
                "ATELIER_MAX_JOBS_PER_USER": "3",
                "ATELIER_API_RATE_PER_MINUTE": "100000",  # the test polls for results
            },
        )
        dep.data_dir.mkdir()
        dep.start_worker("post")
        fake = FakeDiscord()
        await fake.start()
        bot = BotProcess(fake, dep, tmp_path)
        api = ApiServer(dep)
        try:
            await dep.wait_ready(kinds=("post",))
            bot.start()
            api.start()
            await fake.wait_connected(timeout=60)
            await fake.wait_for(lambda: fake.commands, timeout=30)
            await api.wait_ready()
            yield TwoFrontEnds(fake, dep, bot, api, url)
        finally:
            bot.stop()
            api.stop()
            await fake.stop()
            dep.stop()


async def _rows(url: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


async def test_the_bot_and_the_api_share_one_postgres_without_losing_a_write(
    on_postgres: TwoFrontEnds,
) -> None:
    fake, dep, api = on_postgres.fake, on_postgres.deployment, on_postgres.api
    alice_id = fake.users["alice"]
    # Alice's API key, minted on the shared database (as /apikey would).
    async with Store(on_postgres.database) as store:
        key = await ApiKeys(dep.settings(), store).mint(
            Requester(id=f"discord:{alice_id}", name="alice", server=str(fake.guild_id)), "tests"
        )
    headers = {"Authorization": f"Bearer {key.token}"}

    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=60) as http:
        # At once: each person twice through Discord, and alice four times through the API. Her
        # cap is 3 in flight, counted across both processes: 2 + 4 asks, 3 pass.
        slashes = [
            fake.slash("imagine", {"prompt": f"a paper lantern {n} {person}", "steps": 1}, user=person)
            for n in range(2)
            for person in PEOPLE
        ]
        posts = [
            http.post("/v1/generations", json={"prompt": f"a glass lantern {n}", "steps": 1})
            for n in range(4)
        ]
        outcome = await asyncio.gather(*slashes, *posts)
        records, answers = outcome[: len(slashes)], outcome[len(slashes) :]
        followups = await asyncio.gather(*(r.wait_followups(1, timeout=60) for r in records))
        said = [(r.user_id, f[0].content) for r, f in zip(records, followups, strict=True)]
        accepted_discord = [user for user, content in said if content.startswith("On it")]
        accepted_api = [a.json()["id"] for a in answers if a.status_code == 202]
        refused_api = [a for a in answers if a.status_code == 429]
        alice_accepted = len(accepted_api) + accepted_discord.count(alice_id)
        assert alice_accepted == 3, (said, [a.status_code for a in answers], on_postgres.bot.log()[-3000:])
        assert all(a.json()["detail"] for a in refused_api)  # a sentence, not a traceback
        assert len(accepted_discord) == 4 + (alice_accepted - len(accepted_api))  # bob's and mod's four

        queued = await _rows(on_postgres.database, "SELECT id, status FROM generations")
        assert len(queued) == len(accepted_discord) + len(accepted_api)
        assert {row["status"] for row in queued} == {"queued"}

        dep.start_worker("inference")
        await dep.wait_ready(kinds=("inference",))
        for generation_id in accepted_api:
            done = await until_done(http, generation_id)
            assert done["status"] == "done" and len(done["images"]) == 1, done

    # Every Discord request ends in one delivered result, posted once.
    def results() -> list[str]:
        return [m.content for t in fake.threads for m in fake.bot_messages(t) if m.content.startswith("✅")]

    await fake.wait_for(lambda: len(results()) == len(accepted_discord), timeout=180, message="results")
    rows = await _rows(
        on_postgres.database,
        "SELECT g.id, g.status, COUNT(i.id) AS images, d.delivered_at FROM generations g "
        "LEFT JOIN images i ON i.generation_id = g.id LEFT JOIN deliveries d ON d.generation_id = g.id "
        "GROUP BY g.id, g.status, d.delivered_at",
    )
    assert len(rows) == len(queued)
    assert all(row["status"] == "done" and row["images"] == 1 for row in rows), rows
    delivered = [row for row in rows if row["delivered_at"] is not None]
    assert len(delivered) >= len(accepted_discord)  # the bot's deliveries, each recorded
    assert len(results()) == len(accepted_discord)  # and none posted twice
    fake.assert_clean()
