"""The Forge trains a Flux LoRA through the real bot, Redis and training worker, and it is usable."""

from __future__ import annotations

import io

import numpy as np
import safetensors.torch
from PIL import Image

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, imagine, new_thread
from tests.e2e.test_bot_forge import TRAIN_TIMEOUT, training_status, uploads
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment

USER = "mod"  # nobody else in the e2e tests trains as mod: the daily quota stays out of the way
QUICK_FLUX = {"steps": 12, "rank": 4, "learning_rate": 0.01, "resolution": 64, "base_model": "tiny-flux"}


def pixels(data: bytes) -> bytes:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).tobytes()


async def test_train_a_flux_lora_then_generate_with_it(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    # SD 3.5 models are not offered for training, and typing one in is refused with a sentence,
    # before any thread or job.
    offered = await fake.autocomplete("train", {"name": "x", "base_model": "tiny"}, focused="base_model")
    assert {choice["value"] for choice in offered} >= {"tiny-sd15", "tiny-flux"}
    assert "tiny-sd3" not in {choice["value"] for choice in offered}
    threads = set(fake.threads)
    refused = await fake.slash(
        "train",
        {**QUICK_FLUX, "name": "sd3fox", "trigger": "zqfox", "base_model": "tiny-sd3"},
        user=USER,
        attachments=uploads(3),
    )
    assert "The Forge trains SD 1.5, SDXL and Flux LoRAs" in await ephemeral_answer(refused)
    assert set(fake.threads) == threads

    record = await fake.slash(
        "train",
        {**QUICK_FLUX, "name": "fluxfox", "trigger": "zqfox", "visibility": "server"},
        user=USER,
        attachments=uploads(3),
    )
    answer = await ephemeral_answer(record)
    assert answer.startswith("Training `fluxfox` v1 on 3 images (12 steps, rank 4, 64 px)"), answer
    thread = await new_thread(fake, threads)
    status = await fake.wait_for(lambda: training_status(fake, thread.id), timeout=15)
    done = await finished(fake, status.id, timeout=TRAIN_TIMEOUT)
    assert done.content.startswith("✅ Trained `fluxfox` v1"), done.content
    assert "12 steps" in done.content and "lora:fluxfox" in done.content
    (comparison,) = done.attachments  # base row above LoRA row, two seeds
    assert Image.open(io.BytesIO(comparison.bytes)).size == (2 * 64 + 2, 2 * 64 + 2)

    # The LoRA serves Flux generations: same seed, with and without it, different pixels.
    prompt = "zqfox in a forest --seed 5"
    plain, _ = await imagine(fake, {"prompt": prompt, "model": "tiny-flux", "batch": 1}, user="bob")
    with_lora, _ = await imagine(
        fake, {"prompt": prompt, "model": "tiny-flux", "batch": 1, "lora": "fluxfox:1"}, user="bob"
    )
    plain_done, lora_done = await finished(fake, plain.id), await finished(fake, with_lora.id)
    assert plain_done.content.startswith("✅ Done") and lora_done.content.startswith("✅ Done")
    fields = {f["name"]: f["value"] for f in lora_done.embeds[0]["fields"]}
    assert fields["LoRAs"] == "fluxfox:1"
    assert pixels(plain_done.attachments[0].bytes) != pixels(lora_done.attachments[0].bytes)
    # An SD 1.5 model cannot take it: one sentence.
    wrong = await fake.slash("imagine", {"prompt": "a fox", "lora": "fluxfox"}, user="bob")
    assert "was trained for FLUX models" in await ephemeral_answer(wrong)

    # The kohya export is in kohya's Flux layout (fused q/k/v, single blocks' linear1/linear2).
    exported = await fake.slash("models", {"name": "fluxfox"}, user=USER, subcommand="export")
    await exported.wait_response()
    (sent,) = await exported.wait_followups(1, timeout=15)
    (weights,) = sent.attachments
    assert weights.filename == "fluxfox-v1-kohya.safetensors"
    keys = set(safetensors.torch.load(weights.bytes))
    assert "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight" in keys
    assert "lora_unet_single_blocks_0_linear1.lora_up.weight" in keys
    deleted = await fake.slash("models", {"name": "fluxfox"}, user=USER, subcommand="delete")
    assert "Deleted `fluxfox` (v1)" in await ephemeral_answer(deleted)
    fake.assert_clean()
