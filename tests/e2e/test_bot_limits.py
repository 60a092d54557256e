"""The bot under Discord's harder rules: small upload limits, 429s, bad tokens, project threads."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine
from tests.fake_discord import FakeDiscord
from tests.integration.workers import ROOT, Deployment

SMALL_LIMIT = 6_000  # bytes: a 4-image grid PNG of the tiny model is ~40 kB


@pytest.fixture
async def strict(e2e_deployment: Deployment, tmp_path: Path) -> AsyncIterator[tuple[FakeDiscord, BotProcess]]:
    """A Discord whose upload limit is tiny, with its own bot process."""
    fake = FakeDiscord(attachment_size_limit=SMALL_LIMIT)
    await fake.start()
    await e2e_deployment.wait_ready()
    # The same workers (queue prefix), but a database of its own: a second bot on the session's
    # database would resume the session bot's deliveries, in channels this Discord never had.
    own = Deployment(
        data_dir=tmp_path / "studio", models_file=e2e_deployment.models_file, prefix=e2e_deployment.prefix
    )
    own.data_dir.mkdir()
    bot = BotProcess(fake, own, tmp_path)
    bot.start()
    try:
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        yield fake, bot
    finally:
        bot.stop()
        await fake.stop()


async def test_results_and_posted_images_fit_the_upload_limit(strict: tuple[FakeDiscord, BotProcess]) -> None:
    fake, _ = strict
    status, thread_id = await imagine(fake, {"prompt": "many small boats --seed 3", "batch": 4})
    result = await finished(fake, status.id)
    (grid,) = result.attachments
    assert grid.size <= SMALL_LIMIT and grid.filename.endswith(".jpg")
    assert Image.open(io.BytesIO(grid.bytes)).format == "JPEG"
    generation = next(i for i in custom_ids(result) if i.startswith("at:r:")).split(":")[2]
    post = await fake.click(result.id, f"at:u:{generation}:3")
    assert "Posted image 4" in await ephemeral_answer(post)
    image = await fake.wait_for(
        lambda: next((m for m in fake.bot_messages(thread_id) if m.content.startswith("Image 4")), None)
    )
    assert image.attachments[0].size <= SMALL_LIMIT
    fake.assert_clean()


async def test_rate_limits_slow_the_bot_down_but_lose_nothing(strict: tuple[FakeDiscord, BotProcess]) -> None:
    fake, _ = strict
    edits = fake.inject_rate_limit("PATCH", r"/channels/\d+/messages/\d+", count=3, retry_after=0.3)
    sends = fake.inject_rate_limit("POST", r"/channels/\d+/messages", count=1, retry_after=0.3)
    status, _ = await imagine(fake, {"prompt": "a patient heron --size 256x256", "steps": 20})
    result = await finished(fake, status.id)
    assert result.content.startswith("✅") and edits.consumed >= 1 and sends.consumed == 1
    assert len(result.attachments) == 1
    fake.assert_clean()


async def test_imagine_inside_a_project_thread_continues_that_project(
    strict: tuple[FakeDiscord, BotProcess],
) -> None:
    fake, _ = strict
    first, thread_id = await imagine(fake, {"prompt": "a red kite"})
    await finished(fake, first.id)
    threads = set(fake.threads)
    second, same_thread = await imagine(fake, {"prompt": "a blue kite"}, channel_id=thread_id)
    assert same_thread == thread_id and set(fake.threads) == threads
    await finished(fake, second.id)
    fake.assert_clean()


async def test_missing_or_rejected_token_is_one_clear_line(
    e2e_deployment: Deployment, tmp_path: Path
) -> None:
    fake = FakeDiscord()
    await fake.start()
    try:
        bot = BotProcess(fake, e2e_deployment, tmp_path)
        for token, words in (("", "DISCORD_TOKEN is not set"), ("wrong", "Discord rejected the token")):
            env = {**bot.env(), "DISCORD_TOKEN": token}
            result = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "bot"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 2
            errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and words in errors[0], result.stderr
            assert "Traceback" not in result.stderr and "wrong" not in result.stderr
    finally:
        await fake.stop()
