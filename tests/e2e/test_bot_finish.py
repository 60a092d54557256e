"""Finishing through the real bot: /inpaint, /upscale and U, /grade with Apply and Adjust, /export."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
from PIL import Image

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine, status_message
from tests.fake_discord import FakeDiscord
from tests.fake_discord.state import MessageRecord


def link(fake: FakeDiscord, message: MessageRecord) -> str:
    return f"https://discord.com/channels/{fake.guild_id}/{message.channel_id}/{message.id}"


def rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def new_bot_message(fake: FakeDiscord, channel_id: int, known: set[int], prefix: str) -> MessageRecord | None:
    return next(
        (m for m in fake.bot_messages(channel_id) if m.id not in known and m.content.startswith(prefix)), None
    )


async def test_inpaint_upscale_and_u_buttons(bot: BotProcess, fake: FakeDiscord) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a blue house --seed 8", "batch": 2})
    result = await finished(fake, status.id)
    generation = next(i for i in custom_ids(result) if i.startswith("at:r:")).split(":")[2]

    # /inpaint on image 2 of the result, with a box: only the box changes.
    known = {m.id for m in fake.bot_messages(thread_id)}
    options = {"prompt": "a red door --seed 1", "link": link(fake, result), "number": 2, "box": "25,25,50,50"}
    record = await fake.slash("inpaint", options, channel_id=thread_id)
    assert "Repainting" in await ephemeral_answer(record)
    repainted = await finished(fake, (await status_message(fake, thread_id, known)).id)
    assert repainted.content.startswith("✅"), repainted.content
    fields = {f["name"]: f["value"] for f in repainted.embeds[0]["fields"]}
    assert fields["Strength"] == "0.95"

    refusals = [
        ({"prompt": "x", "link": link(fake, result), "box": "0,0,0,10"}, "above 0"),
        ({"prompt": "x", "link": link(fake, result), "box": "50,50,60,10"}, "runs outside the image"),
        ({"prompt": "x", "link": link(fake, result)}, "Give a mask image"),
        ({"prompt": "x", "box": "0,0,10,10"}, "Attach an image, or give a link"),
    ]
    for options, words in refusals:
        answer = await ephemeral_answer(await fake.slash("inpaint", options, channel_id=thread_id))
        assert words in answer, answer
    wrong = Image.new("L", (16, 16), 255)
    out = io.BytesIO()
    wrong.save(out, format="PNG")
    answer = await ephemeral_answer(
        await fake.slash(
            "inpaint",
            {"prompt": "x", "link": link(fake, result)},
            channel_id=thread_id,
            attachments={"mask": (out.getvalue(), "mask.png", "image/png")},
        )
    )
    assert "mask is 16x16 but the image is 64x64" in answer

    # /upscale 4x of an upload, and U2 (2x) on the result.
    known = {m.id for m in fake.bot_messages(thread_id)}
    upload = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(upload, format="PNG")
    record = await fake.slash(
        "upscale",
        {"factor": 4},
        channel_id=thread_id,
        attachments={"image": (upload.getvalue(), "small.png", "image/png")},
    )
    assert "Upscaled 4×" in await ephemeral_answer(record)
    posted = await fake.wait_for(lambda: new_bot_message(fake, thread_id, known, "⬆️ Upscaled 4×"))
    assert "160×120" in posted.content and "no upscale model is configured" in posted.content
    assert Image.open(io.BytesIO(posted.attachments[0].bytes)).size == (160, 120)

    pressed = await fake.click(result.id, f"at:u:{generation}:1")
    assert "Posted image 2, upscaled 2×" in await ephemeral_answer(pressed)
    single = await fake.wait_for(lambda: new_bot_message(fake, thread_id, known, "Image 2"))
    assert Image.open(io.BytesIO(single.attachments[0].bytes)).size == (128, 128)
    denied = await fake.click(result.id, f"at:u:{generation}:0", user="bob")
    assert "Only the person who made these images" in await ephemeral_answer(denied)
    fake.assert_clean()


async def test_grade_preview_apply_adjust_and_exports(bot: BotProcess, fake: FakeDiscord) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a quiet harbour --seed 5"})
    result = await finished(fake, status.id)

    known = {m.id for m in fake.bot_messages(thread_id)}
    record = await fake.slash(
        "grade", {"link": link(fake, result), "preset": "noir", "vignette": 40}, channel_id=thread_id
    )
    assert "Preview posted" in await ephemeral_answer(record)
    preview = await fake.wait_for(lambda: new_bot_message(fake, thread_id, known, "🎨 Before / after"))
    assert "noir" in preview.content and "vignette 40" in preview.content
    assert Image.open(io.BytesIO(preview.attachments[0].bytes)).width > 128  # side by side
    apply, adjust = custom_ids(preview)
    assert apply.startswith("at:g:a:") and adjust.startswith("at:g:j:")
    denied = await fake.click(preview.id, apply, user="bob")
    assert "Only the person who made this" in await ephemeral_answer(denied)
    applied = await fake.click(preview.id, apply)
    assert "Applied" in await ephemeral_answer(applied)
    graded = await fake.wait_for(lambda: new_bot_message(fake, thread_id, known, "🎨 Graded"))
    pixels = rgb(graded.attachments[0].bytes)
    assert pixels.shape == (64, 64, 3)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).max() <= 2  # noir is black and white

    opened = await fake.click(preview.id, adjust)
    modal = await opened.wait_response()
    assert modal.type == 9
    fields: dict[str, Any] = {
        "at:gm:preset": "warm",
        "at:gm:exposure": "0.5",
        "at:gm:contrast": "10",
        "at:gm:saturation": "0",
        "at:gm:temperature": "20",
    }
    resubmitted = await fake.submit_modal(modal.data["custom_id"], fields)
    assert "New preview posted" in await ephemeral_answer(resubmitted)
    again = await fake.wait_for(
        lambda: new_bot_message(fake, thread_id, known | {preview.id}, "🎨 Before / after")
    )
    assert "warm" in again.content and "exposure +0.5" in again.content
    opened = await fake.click(again.id, custom_ids(again)[1])
    bad = await fake.submit_modal(
        (await opened.wait_response()).data["custom_id"], {**fields, "at:gm:exposure": "99"}
    )
    assert "`exposure` must be stops of light" in await ephemeral_answer(bad)
    nothing = await fake.slash("grade", {"link": link(fake, result)}, channel_id=thread_id)
    assert "this grade changes nothing" in await ephemeral_answer(nothing)

    # /export image: exact sizes, a size limit that holds, the recipe kept or stripped.
    async def export(options: dict[str, Any]) -> tuple[str, bytes, str]:
        record = await fake.slash("export", {"link": link(fake, result), **options}, subcommand="image")
        await record.wait_response()
        (sent,) = await record.wait_followups(1, timeout=30)
        assert sent.ephemeral
        if not sent.attachments:
            return str(sent.content), b"", ""
        return str(sent.content), sent.attachments[0].bytes, sent.attachments[0].filename

    caption, data, name = await export({"preset": "x-post"})
    assert Image.open(io.BytesIO(data)).size == (1600, 900) and name.endswith("-x-post.jpg")
    caption, data, name = await export({"preset": "discord-emoji", "format": "webp", "max_kb": 8})
    assert len(data) <= 8 * 1024 and Image.open(io.BytesIO(data)).size == (128, 128) and "quality" in caption
    caption, data, _ = await export({"preset": "linkedin-headshot", "format": "png", "metadata": False})
    assert (
        Image.open(io.BytesIO(data)).size == (400, 400)
        and "parameters" not in Image.open(io.BytesIO(data)).info
    )
    _, data, _ = await export({"preset": "linkedin-headshot", "format": "png"})
    kept = Image.open(io.BytesIO(data)).info["parameters"]
    assert "a quiet harbour" in kept and "Model hash: " in kept  # the worker's own text, hashes and all
    caption, _, _ = await export({"preset": "x-post", "focus_x": 150.0, "focus_y": 10.0})
    assert "focus point is in percent" in caption

    # /export pack: the favourites of this project, zipped per preset.
    menu = next(i for i in custom_ids(result) if i.startswith("at:f:"))
    await ephemeral_answer(await fake.select(result.id, menu, ["0"]))
    record = await fake.slash(
        "export", {"presets": "instagram-square, discord-sticker"}, subcommand="pack", channel_id=thread_id
    )
    await record.wait_response()
    (sent,) = await record.wait_followups(1, timeout=60)
    names = zipfile.ZipFile(io.BytesIO(sent.attachments[0].bytes)).namelist()
    assert len(names) == 2 and names[0].startswith("instagram-square/01-")
    listing = await ephemeral_answer(await fake.slash("export", None, subcommand="presets"))
    assert "`print-a4` — 2480×3508" in listing
    fake.assert_clean()
