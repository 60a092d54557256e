"""/imagine control: through the real bot, fake Discord, a real post worker (the canny map) and a
real inference worker on the tiny models with tiny random ControlNets."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, generation_count, new_thread, status_message
from tests.fake_discord import FakeDiscord, MessageRecord
from tests.integration.workers import Deployment

BOX = (16, 12, 46, 50)  # the drawn rectangle, on a 64x64 canvas (the tiny models' size)


def drawing() -> tuple[bytes, str, str]:
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).rectangle(BOX, fill=(20, 40, 160))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue(), "drawing.png", "image/png"


def grey(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L")).astype(int)


async def made(
    fake: FakeDiscord, options: dict[str, Any], attachments: dict[str, tuple[bytes, str, str]] | None = None
) -> MessageRecord:
    threads = set(fake.threads)
    record = await fake.slash("imagine", options, attachments=attachments)
    answer = await ephemeral_answer(record)
    assert "follow along" in answer, answer
    thread = await new_thread(fake, threads)
    result = await finished(fake, (await status_message(fake, thread.id)).id)
    assert result.content.startswith("✅"), result.content
    return result


async def test_canny_control_returns_the_result_beside_its_edge_map(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    prompt = {"prompt": "a small house --seed 21", "batch": 1}
    plain = await made(fake, prompt)
    controlled = await made(fake, {**prompt, "control_mode": "canny"}, attachments={"control": drawing()})
    assert len(plain.attachments) == 1 and len(controlled.attachments) == 2
    result, edge_map = controlled.attachments
    assert "canny-map" in edge_map.filename
    fields = {f["name"]: f["value"] for f in controlled.embeds[0]["fields"]}
    assert fields["Control"] == "canny 1 (steps 0–1)"
    edges = grey(edge_map.bytes) > 127
    assert edges.shape == (64, 64)
    border = np.zeros_like(edges)
    x0, y0, x1, y1 = BOX
    border[y0 - 2 : y1 + 3, x0 - 2 : x1 + 3] = True
    border[y0 + 3 : y1 - 2, x0 + 3 : x1 - 2] = False  # a band two pixels either side of the border
    assert edges.sum() > 100 and not edges[~border].any()  # edges all along it, nowhere else
    assert grey(result.bytes).shape == (64, 64)
    assert np.abs(grey(result.bytes) - grey(plain.attachments[0].bytes)).mean() > 1  # control steers
    fake.assert_clean()


async def test_depth_control_returns_the_result_beside_its_depth_map(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    controlled = await made(
        fake,
        {"prompt": "a small house --seed 22", "batch": 1, "control_mode": "depth"},
        attachments={"control": drawing()},
    )
    assert len(controlled.attachments) == 2
    result, depth_map = controlled.attachments
    assert "depth-map" in depth_map.filename
    fields = {f["name"]: f["value"] for f in controlled.embeds[0]["fields"]}
    assert fields["Control"] == "depth 1 (steps 0–1)"
    depth = np.asarray(Image.open(io.BytesIO(depth_map.bytes)).convert("RGB")).astype(int)
    assert depth.shape == (64, 64, 3)  # the annotator's map, the recipe's size
    assert (depth == depth[:, :, :1]).all()  # greyscale
    assert depth.max() == 255 and depth.min() == 0  # normalised depth
    assert grey(result.bytes).shape == (64, 64)
    fake.assert_clean()


@pytest.mark.parametrize(
    ("options", "with_image", "words"),
    [
        (
            {"control_mode": "lineart"},
            True,
            "No lineart ControlNet is configured for SD 1.5 models here; ask the operator to add one "
            "(see README).",
        ),
        ({"control_strength": 2.5}, True, "Control strength must be between 0 and 2 (got 2.5)."),
        (
            {"control_start": 0.7, "control_end": 0.3},
            True,
            "Control start and end are fractions of the steps",
        ),
        ({"control_strength": 0.5}, False, "Control options need an image"),
    ],
)
async def test_bad_control_is_one_ephemeral_sentence_and_nothing_queued(
    bot: BotProcess,
    fake: FakeDiscord,
    e2e_deployment: Deployment,
    options: dict[str, Any],
    with_image: bool,
    words: str,
) -> None:
    before, threads = generation_count(e2e_deployment), set(fake.threads)
    record = await fake.slash(
        "imagine", {"prompt": "a cat", **options}, attachments={"control": drawing()} if with_image else None
    )
    answer = await ephemeral_answer(record)
    assert words in answer and answer.count(". ") == 0, answer
    assert generation_count(e2e_deployment) == before and set(fake.threads) == threads
