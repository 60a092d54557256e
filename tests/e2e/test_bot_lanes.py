"""Lanes through the real bot: a relax job waits while fast jobs exist, and /status says so.

No inference worker runs while the jobs are queued (the order they wait in is then fixed), so
the test needs no timing: the worker starts afterwards, and arq's own record of when it started
each job gives the order they ran in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from studio import jobs
from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, generation_of, imagine
from tests.fake_discord import FakeDiscord
from tests.integration.workers import TEST_REDIS_URL, Deployment


@pytest.fixture
async def no_inference_yet(
    tiny_catalogue: Path, tmp_path: Path
) -> AsyncIterator[tuple[FakeDiscord, Deployment]]:
    """A Discord, a bot and a post worker of their own; the test starts the inference worker."""
    dep = Deployment(data_dir=tmp_path / "studio", models_file=tiny_catalogue)
    dep.data_dir.mkdir()
    dep.start_worker("post")
    fake = FakeDiscord()
    await fake.start()
    bot = BotProcess(fake, dep, tmp_path)
    try:
        await dep.wait_ready(kinds=("post",))
        bot.start()
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        yield fake, dep
    finally:
        bot.stop()
        await fake.stop()
        dep.stop()


def started_at(generation_id: str) -> float:
    with redis.Redis.from_url(TEST_REDIS_URL) as client:
        raw = client.get(jobs.ARQ_RESULT_PREFIX + generation_id)
    assert raw is not None, f"no arq result for {generation_id}"
    return float(jobs.deserialize(raw)["st"])


async def test_relax_waits_for_fast_and_status_shows_lane_and_place(
    no_inference_yet: tuple[FakeDiscord, Deployment],
) -> None:
    fake, dep = no_inference_yet
    saved = await ephemeral_answer(
        await fake.slash("settings", {"lane": "relax"}, user="bob", subcommand="set")
    )
    assert "Saved" in saved and "lane relax" in saved

    relaxed, _ = await imagine(fake, {"prompt": "a slow boat --steps 2"}, user="bob")  # queued first
    fast = [
        (await imagine(fake, {"prompt": f"a quick fox {n} --steps 2"}, user=user))[0]
        for n, user in enumerate(["alice", "alice", "mod"])
    ]

    report = await ephemeral_answer(await fake.slash("status", user="bob"))
    assert "**Your lane:** relax" in report, report
    assert "queued · 3 jobs ahead" in report, report  # the three fast jobs, though queued later
    mine = await ephemeral_answer(await fake.slash("status", user="mod"))
    assert "**Your lane:** fast" in mine and "queued · 1 job ahead" in mine, mine  # alice's turn, then mod's

    dep.start_worker("inference")
    results = [await finished(fake, status.id) for status in [*fast, relaxed]]
    assert all(result.content.startswith("✅") for result in results), [r.content for r in results]
    order = sorted([*fast, relaxed], key=lambda status: started_at(generation_of(status)))
    assert order[-1] is relaxed  # it ran only once no fast job was waiting
    assert [s.id for s in order[:3]] == [fast[0].id, fast[2].id, fast[1].id]  # alice, mod, alice: turns
    fake.assert_clean()
