"""/remix: img2img from an upload; bad uploads are refused before anything is queued."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, generation_count, new_thread, status_message
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment


def png_bytes(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def bomb() -> bytes:
    chunk = b"IHDR" + struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + iend


async def test_remix_an_upload(bot: BotProcess, fake: FakeDiscord) -> None:
    threads = set(fake.threads)
    record = await fake.slash(
        "remix",
        {"prompt": "the same scene at night", "strength": 0.5},
        attachments={"image": (png_bytes(300, 200), "photo.png", "image/png")},
    )
    assert "Remixing your image" in await ephemeral_answer(record)
    thread = await new_thread(fake, threads)
    result = await finished(fake, (await status_message(fake, thread.id)).id)
    fields = {f["name"]: f["value"] for f in result.embeds[0]["fields"]}
    assert fields["Strength"] == "0.5" and fields["Size"] == "64×64"
    fake.assert_clean()


BAD_UPLOADS = {
    "not an image": (b"hello, I am a text file", "notes.png", "image/png", "not an image I can read"),
    "truncated": (png_bytes(300, 200)[:300], "cut.png", "image/png", "truncated or corrupt"),
    "decompression bomb": (bomb(), "bomb.png", "image/png", "far too many pixels"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
async def test_bad_uploads_are_refused_and_nothing_is_queued(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment, case: str
) -> None:
    data, name, content_type, words = BAD_UPLOADS[case]
    threads, before = set(fake.threads), generation_count(e2e_deployment)
    record = await fake.slash(
        "remix", {"prompt": "anything"}, attachments={"image": (data, name, content_type)}
    )
    answer = await ephemeral_answer(record)
    assert words in answer, answer
    assert set(fake.threads) == threads and generation_count(e2e_deployment) == before
    fake.assert_clean()
