"""Flux.1 and SD 3.5 through the real bot, the fake Discord, Redis and a worker on the tiny models:
/imagine's grid and its U, V and 🔁 buttons, /remix (img2img) and /inpaint."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import (
    custom_ids,
    ephemeral_answer,
    finished,
    generation_count,
    imagine,
    new_thread,
    status_message,
)
from tests.e2e.test_bot_finish import new_bot_message, rgb
from tests.fake_discord import FakeDiscord
from tests.fake_discord.state import MessageRecord
from tests.integration.workers import Deployment

FAMILY_MODELS = ["tiny-flux", "tiny-sd3"]


def fields_of(message: MessageRecord) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


def picture(size: tuple[int, int], seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("model", FAMILY_MODELS)
async def test_imagine_gives_a_grid_whose_u_v_and_reroll_buttons_work(
    bot: BotProcess, fake: FakeDiscord, model: str
) -> None:
    status, thread_id = await imagine(
        fake, {"prompt": "a lighthouse at dusk --seed 21", "model": model, "batch": 2}
    )
    result = await finished(fake, status.id)
    assert result.content.startswith("✅ Done"), result.content
    (grid,) = result.attachments
    assert Image.open(io.BytesIO(grid.bytes)).size == (2 * 64 + 2, 64)
    fields = fields_of(result)
    assert (fields["Model"], fields["Seed"], fields["Size"]) == (model, "21 … 22", "64×64")
    ids = custom_ids(result)
    generation = next(i for i in ids if i.startswith("at:r:")).split(":")[2]
    assert {f"at:u:{generation}:1", f"at:v:{generation}:1"} <= set(ids)

    known = {m.id for m in fake.bot_messages(thread_id)}
    upscaled = await fake.click(result.id, f"at:u:{generation}:1")
    assert "Posted image 2, upscaled 2×" in await ephemeral_answer(upscaled)
    single = await fake.wait_for(lambda: new_bot_message(fake, thread_id, known, "Image 2"))
    assert Image.open(io.BytesIO(single.attachments[0].bytes)).size == (128, 128)

    known = {m.id for m in fake.bot_messages(thread_id)}
    vary = await fake.click(result.id, f"at:v:{generation}:1")
    assert "Variations of image 2" in await ephemeral_answer(vary)
    variation = await finished(fake, (await status_message(fake, thread_id, known)).id)
    assert variation.content.startswith("✅"), variation.content
    assert (fields_of(variation)["Model"], fields_of(variation)["Strength"]) == (model, "0.35")

    known = {m.id for m in fake.bot_messages(thread_id)}
    reroll = await fake.click(result.id, f"at:r:{generation}:0")
    assert "Rerolling" in await ephemeral_answer(reroll)
    rerolled = await finished(fake, (await status_message(fake, thread_id, known)).id)
    assert rerolled.content.startswith("✅"), rerolled.content
    assert fields_of(rerolled)["Model"] == model and not fields_of(rerolled)["Seed"].startswith("21 ")
    fake.assert_clean()


async def test_remix_and_inpaint_on_flux_and_sd3(bot: BotProcess, fake: FakeDiscord) -> None:
    for model in FAMILY_MODELS:
        threads = set(fake.threads)
        record = await fake.slash(
            "remix",
            {"prompt": f"the same scene at night --model {model}", "strength": 0.5},
            attachments={"image": (picture((300, 200), 1), "photo.png", "image/png")},
        )
        assert "Remixing your image" in await ephemeral_answer(record)
        thread = await new_thread(fake, threads)
        remixed = await finished(fake, (await status_message(fake, thread.id)).id)
        assert remixed.content.startswith("✅"), remixed.content
        fields = fields_of(remixed)
        assert (fields["Model"], fields["Strength"], fields["Size"]) == (model, "0.5", "64×64")

        # An upload whose sides are no multiple of 16: repainted at 96x48, delivered at 100x60.
        source = picture((100, 60), 2)
        known = {m.id for m in fake.bot_messages(thread.id)}
        record = await fake.slash(
            "inpaint",
            {"prompt": f"a red door --model {model} --seed 1", "box": "25,25,50,50"},
            channel_id=thread.id,
            attachments={"image": (source, "door.png", "image/png")},
        )
        assert "Repainting" in await ephemeral_answer(record)
        repainted = await finished(fake, (await status_message(fake, thread.id, known)).id)
        assert repainted.content.startswith("✅"), repainted.content
        assert fields_of(repainted)["Model"] == model
        out, original = rgb(repainted.attachments[0].bytes), rgb(source)
        assert out.shape == original.shape
        inside = np.zeros((60, 100), dtype=bool)
        inside[15:45, 25:75] = True
        assert np.array_equal(out[~inside], original[~inside])
        assert not np.array_equal(out[inside], original[inside])
    fake.assert_clean()


async def test_each_familys_refusals_are_one_ephemeral_sentence(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    refusals = [
        (
            {"prompt": "a cat", "model": "tiny-flux", "negative": "dogs"},
            "Flux.1 models take no negative prompt;",
        ),
        ({"prompt": "a (red:1.4) cat", "model": "tiny-sd3"}, "SD 3.5 models take no prompt weights"),
        ({"prompt": "a cat --size 72x64", "model": "tiny-flux"}, "multiple of 16 for Flux.1 models (got 72)"),
        ({"prompt": "a cat --sampler ddim", "model": "tiny-sd3"}, "SD 3.5 models sample with euler only"),
    ]
    for options, words in refusals:
        threads, before = set(fake.threads), generation_count(e2e_deployment)
        answer = await ephemeral_answer(await fake.slash("imagine", options))
        assert words in answer and "Traceback" not in answer, answer
        assert set(fake.threads) == threads and generation_count(e2e_deployment) == before
    fake.assert_clean()
