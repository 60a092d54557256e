"""Daily GPU-second quotas through the real bot: the refusal gives the reset time, a role raises
one person's limit, /status shows used of allowed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, imagine
from tests.fake_discord import FakeDiscord
from tests.fake_discord.state import MANAGE_GUILD
from tests.integration.workers import Deployment

TINY_QUOTA = "0.01"  # GPU-seconds: one generation of the tiny model uses it up
RESET = re.compile(r"It resets <t:(\d+):R> \(<t:\1:t>\)\.$")


@pytest.fixture
async def quota_bot(e2e_deployment: Deployment, tmp_path: Path) -> AsyncIterator[FakeDiscord]:
    """A Discord of its own (its roles are changed) and a bot with a tiny daily quota."""
    fake = FakeDiscord()
    await fake.start()
    await e2e_deployment.wait_ready()
    own = Deployment(
        data_dir=tmp_path / "studio", models_file=e2e_deployment.models_file, prefix=e2e_deployment.prefix
    )
    own.data_dir.mkdir()
    bot = BotProcess(fake, own, tmp_path, extra_env={"ATELIER_DAILY_GPU_SECONDS": TINY_QUOTA})
    bot.start()
    try:
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        yield fake
    finally:
        bot.stop()
        await fake.stop()


async def test_quota_refusal_role_limit_and_status(quota_bot: FakeDiscord) -> None:
    fake = quota_bot
    status, _ = await imagine(fake, {"prompt": "a quiet harbour --seed 1"}, user="bob")
    assert (await finished(fake, status.id)).content.startswith("✅")

    # Used up: the next /imagine is refused in one ephemeral sentence with the reset time, and
    # no thread is opened for it.
    threads = set(fake.threads)
    refused = await ephemeral_answer(await fake.slash("imagine", {"prompt": "another harbour"}, user="bob"))
    assert refused.startswith("You have used your daily GPU time here: ") and RESET.search(refused)
    assert set(fake.threads) == threads
    shown = await ephemeral_answer(await fake.slash("status", user="bob"))
    assert re.search(r"\*\*GPU time today:\*\* \d+\.\d s of 0\.0 s · resets <t:\d+:R>", shown), shown

    # A server manager gives the Artist role an hour a day; bob gets the role and may go on.
    fake.roles[fake.moderator_role_id].permissions |= MANAGE_GUILD
    artist = fake.artist_role_id
    options = {"role": artist, "seconds": 3600}
    said = await ephemeral_answer(await fake.slash("atelier", options, user="mod", subcommand="quota set"))
    assert (
        said.startswith("Set. Daily GPU time per person here: ") and f"<@&{artist}>: 3600 GPU-seconds" in said
    )
    listed = await ephemeral_answer(await fake.slash("atelier", None, user="mod", subcommand="quota show"))
    assert f"<@&{artist}>: 3600 GPU-seconds" in listed and "00:00 UTC" in listed
    fake.give_role("bob", artist)
    status, _ = await imagine(fake, {"prompt": "a busy harbour --seed 2"}, user="bob")
    assert (await finished(fake, status.id)).content.startswith("✅")
    shown = await ephemeral_answer(await fake.slash("status", user="bob"))
    assert re.search(r"\*\*GPU time today:\*\* \d+\.\d s of 60 min · resets <t:\d+:R>", shown), shown
    fake.assert_clean()
