"""The Forge through the real bot: /train in a thread, /models, /imagine lora:, roles and refusals."""

from __future__ import annotations

import io
import json
import re
import signal
import sqlite3
from typing import Any

import numpy as np
import pytest
import safetensors.torch
from PIL import Image, ImageDraw

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine, new_thread
from tests.fake_discord import FakeDiscord
from tests.fake_discord.state import MessageRecord
from tests.integration.workers import Deployment

MANAGE_GUILD = 1 << 5
TRAIN_TIMEOUT = 240.0
QUICK = {"steps": 30, "rank": 4, "learning_rate": 0.01, "resolution": 64}
# Runs that are cancelled, never finished: the most steps allowed (minutes on a CPU), so a run is
# still going whenever the test acts on it.
SLOW = {"steps": 5000, "learning_rate": 0.001}


def subject(seed: int, alt: str | None = None, size: tuple[int, int] = (96, 96)) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
    ImageDraw.Draw(image).ellipse((24, 24, 72, 72), fill=(230, 120, 20))
    out = io.BytesIO()
    image.save(out, format="PNG")
    upload = (out.getvalue(), f"fox{seed}.png", "image/png")
    return (*upload, alt) if alt else upload


def uploads(count: int) -> dict[str, tuple[Any, ...]]:
    return {f"image{i + 1}": subject(i, "in the snow" if i == 0 else None) for i in range(count)}


def training_status(fake: FakeDiscord, thread_id: int) -> MessageRecord | None:
    for message in fake.bot_messages(thread_id):
        if any(c.startswith("at:t:x:") for c in custom_ids(message)) or message.content.startswith(
            "✅ Trained"
        ):
            return message
    return None


async def train(fake: FakeDiscord, options: dict[str, Any], user: str = "alice", **kw: Any) -> Any:
    return await fake.slash("train", {**QUICK, **options}, user=user, **kw)


async def test_train_a_lora_in_a_thread_then_use_export_and_delete_it(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    threads = set(fake.threads)
    record = await train(
        fake, {"name": "redfox", "trigger": "zqfox", "visibility": "server"}, attachments=uploads(4)
    )
    answer = await ephemeral_answer(record)
    assert answer.startswith("Training `redfox` v1 on 4 images (30 steps, rank 4, 64 px)"), answer
    thread = await new_thread(fake, threads)
    assert thread.name == "Training redfox"
    status = await fake.wait_for(lambda: training_status(fake, thread.id), timeout=15)
    done = await finished(fake, status.id, timeout=TRAIN_TIMEOUT)
    assert done.content.startswith("✅ Trained `redfox` v1"), done.content
    # The run may end inside one progress-edit interval (1.5 s), so no "Step … loss" edit is sure
    # to come; the result states the final step and losses, which must be the recorded ones.
    with sqlite3.connect(e2e_deployment.settings().database_path) as db:
        step, losses_json = db.execute(
            "SELECT step, losses_json FROM loras WHERE name = 'redfox' AND status = 'done'"
        ).fetchone()
    losses = json.loads(losses_json)
    assert step == 30 and len(losses) >= 2
    first, last = re.search(r"loss (\d+\.\d+) → (\d+\.\d+)", done.content).groups()  # type: ignore[union-attr]
    assert (first, last) == (f"{losses[0]:.4f}", f"{losses[-1]:.4f}") and float(last) < float(first)
    assert "30 steps" in done.content and "lora:redfox" in done.content
    (comparison,) = done.attachments
    assert Image.open(io.BytesIO(comparison.bytes)).size == (2 * 64 + 2, 2 * 64 + 2)
    fields = {f["name"]: f["value"] for f in done.embeds[0]["fields"]}
    assert fields["Trigger"] == "`zqfox`" and fields["Visibility"] == "this server"
    samples = [m for m in fake.bot_messages(thread.id) if m.content.startswith("🖼️ Checkpoint")]
    assert samples and all(m.attachments for m in samples)
    assert not any(c.startswith("at:t:x:") for c in custom_ids(done))  # no Cancel once it ended

    # /models: listed for everyone on the server, with details and the comparison as its sample.
    listing = await ephemeral_answer(await fake.slash("models", None, user="bob", subcommand="list"))
    assert "`redfox` v1 — trigger `zqfox` · tiny-sd15" in listing and "`tiny-sd15`" in listing
    info = await fake.slash("models", {"name": "redfox"}, user="bob", subcommand="info")
    await info.wait_response()
    (shown,) = await info.wait_followups(1, timeout=15)
    assert shown.ephemeral and shown.embeds[0]["title"] == "redfox (LoRA v1)" and shown.attachments

    # /imagine lora: with autocomplete, then the LoRA in the result's recipe.
    choices = await fake.autocomplete("imagine", {"prompt": "x", "lora": "red"}, focused="lora", user="bob")
    assert [c["value"] for c in choices] == ["redfox:0.8"]
    choices = await fake.autocomplete("imagine", {"prompt": "x", "lora": "other:0.5, zqf"}, focused="lora")
    assert [c["value"] for c in choices] == ["other:0.5, redfox:0.8"]  # the last one; triggers match too
    status, _ = await imagine(
        fake, {"prompt": "zqfox in a forest --seed 5", "lora": "redfox:0.9"}, user="bob"
    )
    result = await finished(fake, status.id)
    assert result.content.startswith("✅ Done"), result.content
    assert {f["name"]: f["value"] for f in result.embeds[0]["fields"]}["LoRAs"] == "redfox:0.9"
    unknown = await fake.slash("imagine", {"prompt": "a fox", "lora": "nosuchlora"}, user="bob")
    assert "Unknown LoRA `nosuchlora`" in await ephemeral_answer(unknown)

    # Export: the owner gets the kohya file; bob may use the model but not take its weights.
    exported = await fake.slash("models", {"name": "redfox"}, subcommand="export")
    await exported.wait_response()
    (sent,) = await exported.wait_followups(1, timeout=15)
    (weights,) = sent.attachments
    assert weights.filename == "redfox-v1-kohya.safetensors"
    assert all(key.startswith("lora_unet_") for key in safetensors.torch.load(weights.bytes))
    refused = await fake.slash("models", {"name": "redfox"}, user="bob", subcommand="export")
    assert "Only the model's owner" in await ephemeral_answer(refused)

    # Delete: not bob's to delete; alice's own, after which it is gone for everyone.
    refused = await fake.slash("models", {"name": "redfox"}, user="bob", subcommand="delete")
    assert "Only the model's owner" in await ephemeral_answer(refused)
    deleted = await fake.slash("models", {"name": "redfox"}, subcommand="delete")
    assert "Deleted `redfox` (v1)" in await ephemeral_answer(deleted)
    gone = await fake.slash("imagine", {"prompt": "a fox", "lora": "redfox"}, user="bob")
    assert "Unknown LoRA `redfox`" in await ephemeral_answer(gone)
    for message in fake.bot_messages():
        assert not fake.pings_anyone(message, include_edits=True), message.content
    fake.assert_clean()


async def test_bad_training_requests_are_refused_before_anything_starts(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    threads = set(fake.threads)

    async def refusal(options: dict[str, Any], attachments: dict[str, Any], user: str = "bob") -> str:
        return await ephemeral_answer(await train(fake, options, user=user, attachments=attachments))

    assert "at least 3 images" in await refusal({"name": "twoshots", "trigger": "zq"}, uploads(2))
    bad = {**uploads(3), "image4": (b"plain text", "fox.png", "image/png")}
    assert "image 4 was refused" in await refusal({"name": "notimage", "trigger": "zq"}, bad)
    tiny = {**uploads(3), "image4": subject(9, size=(20, 20))}
    assert "image 4 is 20x20" in await refusal({"name": "tinyshot", "trigger": "zq"}, tiny)
    assert "becomes a file name" in await refusal({"name": "../evil", "trigger": "zq"}, uploads(3))
    assert "steps must be between" in await refusal(
        {"name": "many", "trigger": "zq", "steps": 100000}, uploads(3)
    )
    assert "project thread" in await refusal({"name": "favs", "trigger": "zq", "source": "favourites"}, {})
    assert set(fake.threads) == threads  # no thread was opened for any of them
    fake.assert_clean()


async def test_training_roles_and_cancel_by_the_owner_or_an_admin(bot: BotProcess, fake: FakeDiscord) -> None:
    async def roles(sub: str, user: str, options: dict[str, Any] | None = None) -> str:
        record = await fake.slash("atelier", options, user=user, subcommand=f"train-roles {sub}")
        return await ephemeral_answer(record)

    artist = fake.artist_role_id
    with pytest.raises(AssertionError, match="hidden from alice"):  # /atelier: server managers only
        await roles("add", "alice", {"role": artist})
    fake.roles[fake.moderator_role_id].permissions |= MANAGE_GUILD
    try:
        assert f"May train models now: <@&{artist}>" in await roles("add", "mod", {"role": artist})
        refused = await train(fake, {"name": "bobfox", "trigger": "zq"}, user="bob", attachments=uploads(3))
        assert "only these roles may train" in await ephemeral_answer(refused)
        fake.give_role("bob", artist)
        threads = set(fake.threads)
        # Shared with the server: a public thread, so alice sees it and may try to cancel.
        slow = {"name": "bobfox", "trigger": "zq", "visibility": "server", **SLOW}
        record = await train(fake, slow, user="bob", attachments=uploads(3))
        assert "Training `bobfox`" in await ephemeral_answer(record)
        thread = await new_thread(fake, threads)
        status = await fake.wait_for(lambda: training_status(fake, thread.id), timeout=15)
        # Progress with the loss: sure to be shown, as the run goes on for minutes and every
        # progress event more than 1.5 s after the last edit makes a new one.
        progress = re.compile(r"🔥 Step (\d+)/5000 `[█░]+` · loss \d+\.\d{4}")
        await fake.wait_for(lambda: progress.search(fake.messages[status.id].content), timeout=150)
        (cancel,) = [c for c in custom_ids(status) if c.startswith("at:t:x:")]
        denied = await fake.click(status.id, cancel, user="alice")
        assert "Only the person who started this training" in await ephemeral_answer(denied)
        stopped = await fake.click(status.id, cancel, user="mod")  # an admin may
        assert "Stopping the training of `bobfox`" in await ephemeral_answer(stopped)
        ended = await finished(fake, status.id, timeout=TRAIN_TIMEOUT)
        assert ended.content.startswith("❌ Training of `bobfox` v1 was cancelled")
    finally:
        await roles("remove", "mod", {"role": artist})
        listed = await roles("list", "mod")  # /atelier is shown to server managers only
        fake.roles[fake.moderator_role_id].permissions &= ~MANAGE_GUILD
    assert "everyone (no roles chosen)" in listed
    fake.assert_clean()


async def test_a_killed_training_worker_shows_retrying_in_the_thread(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    (victim,) = [p for p in e2e_deployment.processes if p.args[-1] == "training" and p.poll() is None]
    threads = set(fake.threads)
    slow = {"name": "crashfox", "trigger": "zq", **SLOW}
    assert "Training `crashfox`" in await ephemeral_answer(await train(fake, slow, attachments=uploads(3)))
    thread = await new_thread(fake, threads)
    status = await fake.wait_for(lambda: training_status(fake, thread.id), timeout=15)
    await fake.wait_for(lambda: "🔥 Step" in fake.messages[status.id].content or None, timeout=150)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # The lease (15 s) lapses, the bot's follower notices within 5 s more: never a silent stall.
    await fake.wait_for(lambda: "⚠️ Retrying" in fake.messages[status.id].content or None, timeout=90)
    assert "training worker stopped" in fake.messages[status.id].content
    e2e_deployment.start_worker("training")
    await fake.wait_for(lambda: "(attempt 2)" in fake.messages[status.id].content or None, timeout=150)
    (cancel,) = [c for c in custom_ids(fake.messages[status.id]) if c.startswith("at:t:x:")]
    assert "Stopping" in await ephemeral_answer(await fake.click(status.id, cancel))
    ended = await finished(fake, status.id, timeout=TRAIN_TIMEOUT)
    assert ended.content.startswith("❌ Training of `crashfox` v1 was cancelled")
    fake.assert_clean()
