"""An acknowledged /imagine survives a bot killed before it could answer."""

from __future__ import annotations

import signal
import sqlite3
import time

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, finished, imagine, new_thread, status_message
from tests.e2e.test_bot_remix import png_bytes
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment


def generations_for(deployment: Deployment, words: str) -> int:
    with sqlite3.connect(deployment.settings().database_path) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM generations WHERE recipe_json LIKE ?", (f"%{words}%",)
        ).fetchone()
    return int(count)


async def _killed_after_the_defer(
    bot: BotProcess, fake: FakeDiscord, prompt: str, upload: bytes | None = None
) -> tuple[int, int]:
    """/imagine (or /remix of ``upload``), SIGKILL the bot between its defer and its next call
    to Discord after it; (interaction id, @original id)."""
    held = fake.hold("POST", rf"/channels/{fake.channel_id}/threads")  # the project's thread
    if upload is None:
        record = await fake.slash("imagine", {"prompt": prompt})
    else:
        files = {"image": (upload, "photo.png", "image/png")}
        record = await fake.slash("remix", {"prompt": prompt, "strength": 0.5}, attachments=files)
    assert (await record.wait_response()).type == 5
    await held.wait_arrived()
    assert bot.process is not None
    bot.stop(signal.SIGKILL)
    held.release(drop=True)  # the dead bot's call never reached Discord
    await fake.wait_disconnected()
    original = await record.original()
    assert original is not None and original.loading
    return record.id, original.id


async def test_a_bot_killed_right_after_acknowledging_imagine_finishes_it_on_restart(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    threads = set(fake.threads)
    _, original_id = await _killed_after_the_defer(bot, fake, "a lantern that outlived the bot --seed 8")
    assert generations_for(e2e_deployment, "a lantern that outlived the bot") == 0
    bot.start()
    await fake.wait_connected(timeout=60)
    thread = await new_thread(fake, threads)
    result = await finished(fake, (await status_message(fake, thread.id)).id)
    assert result.content.startswith("✅") and len(result.attachments) == 1
    original = fake.messages[original_id]
    assert not original.loading and original.content == f"On it — follow along in <#{thread.id}>."
    assert generations_for(e2e_deployment, "a lantern that outlived the bot") == 1
    assert [t for t in fake.threads if t not in threads] == [thread.id]
    assert len([m for m in fake.bot_messages(thread.id) if m.content.startswith("✅")]) == 1
    fake.assert_clean()


async def test_an_interrupted_command_older_than_its_token_is_dropped_with_a_log_line(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    threads = set(fake.threads)
    interaction_id, original_id = await _killed_after_the_defer(bot, fake, "a lantern nobody waited for")
    with sqlite3.connect(e2e_deployment.settings().database_path) as db:  # 16 minutes pass
        db.execute(
            "UPDATE interactions SET created_at = ? WHERE id = ?",
            (time.time() - 16 * 60, str(interaction_id)),
        )
    bot.start()
    await fake.wait_connected(timeout=60)
    await fake.wait_for(lambda: f"dropped /imagine {interaction_id}" in bot.log(), timeout=30)
    with sqlite3.connect(e2e_deployment.settings().database_path) as db:
        (outcome,) = db.execute(
            "SELECT outcome FROM interactions WHERE id = ?", (str(interaction_id),)
        ).fetchone()
    assert outcome == "expired"
    assert generations_for(e2e_deployment, "a lantern nobody waited for") == 0
    assert set(fake.threads) == threads and fake.messages[original_id].loading
    fake.assert_clean()


async def test_a_remix_interrupted_the_same_way_reads_its_upload_again_and_finishes(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    threads = set(fake.threads)
    upload = png_bytes(300, 200)
    _, original_id = await _killed_after_the_defer(bot, fake, "the harbour after the crash", upload)
    bot.start()
    await fake.wait_connected(timeout=60)
    thread = await new_thread(fake, threads)
    result = await finished(fake, (await status_message(fake, thread.id)).id)
    assert result.content.startswith("✅")
    assert {f["name"]: f["value"] for f in result.embeds[0]["fields"]}["Strength"] == "0.5"
    original = fake.messages[original_id]
    assert original.content == f"Remixing your image — follow along in <#{thread.id}>."
    assert generations_for(e2e_deployment, "the harbour after the crash") == 1
    fake.assert_clean()


async def test_a_variation_queued_before_the_kill_is_not_queued_again(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    """Killed after submitting (its status post held): the restart posts that status, submits nothing."""
    status, thread_id = await imagine(fake, {"prompt": "a quiet pond before the crash --seed 4"})
    first = await finished(fake, status.id)
    generation = next(i for i in custom_ids(first) if i.startswith("at:r:")).split(":")[2]
    known = {m.id for m in fake.bot_messages(thread_id)}
    held = fake.hold("POST", rf"/channels/{thread_id}/messages")  # the variation's status message
    record = await fake.click(first.id, f"at:v:{generation}:0")
    assert (await record.wait_response()).type == 5
    await held.wait_arrived()
    assert generations_for(e2e_deployment, "a quiet pond before the crash") == 2  # queued already
    bot.stop(signal.SIGKILL)
    held.release(drop=True)
    await fake.wait_disconnected()
    bot.start()
    await fake.wait_connected(timeout=60)
    variation = await finished(fake, (await status_message(fake, thread_id, known)).id)
    assert variation.content.startswith("✅") and "Strength" in str(variation.embeds[0]["fields"])
    assert generations_for(e2e_deployment, "a quiet pond before the crash") == 2
    answered = f"On it — follow along in <#{thread_id}>."
    original = await fake.wait_for(lambda: fake.messages[record.original_message_id or 0].content == answered)
    assert original
    assert len([m for m in fake.bot_messages(thread_id) if m.id not in known]) == 1
    fake.assert_clean()
