"""Mood boards through the real bot: add (uploads and links), show, /imagine board:, remove, clear."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, imagine, status_message
from tests.fake_discord import FakeDiscord


def png(colour: tuple[int, int, int]) -> tuple[bytes, str, str]:
    out = io.BytesIO()
    Image.new("RGB", (200, 150), colour).save(out, format="PNG")
    return out.getvalue(), "ref.png", "image/png"


def link(fake: FakeDiscord, channel_id: int, message_id: int, guild: int | None = None) -> str:
    return f"https://discord.com/channels/{guild or fake.guild_id}/{channel_id}/{message_id}"


async def test_a_mood_board_from_uploads_and_links_feeds_imagine(bot: BotProcess, fake: FakeDiscord) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a seaside town"})
    result = await finished(fake, status.id)

    async def board(sub: str, options: dict[str, Any] | None = None, user: str = "alice", **kw: Any) -> str:
        record = await fake.slash("moodboard", options, user=user, channel_id=thread_id, subcommand=sub, **kw)
        return await ephemeral_answer(record)

    assert "Mood boards belong to a project" in await ephemeral_answer(
        await fake.slash("moodboard", None, subcommand="show")
    )
    assert "board holds 1" in await board("add", attachments={"image": png((200, 40, 40))})
    assert "board holds 2" in await board("add", {"link": link(fake, thread_id, result.id)})
    not_image = (b"just text", "notes.png", "image/png")
    assert "not an image I can read" in await board("add", attachments={"image": not_image})
    assert "can't find that message" in await board("add", {"link": link(fake, thread_id, 999)})
    fake.expect_violation("Unknown Message")  # the one lookup of the dead link the user gave
    assert "another server" in await board("add", {"link": link(fake, thread_id, result.id, guild=7)})

    known = {m.id for m in fake.bot_messages(thread_id)}
    assert "Posted the board" in await board("show")
    sheet = await fake.wait_for(
        lambda: next((m for m in fake.bot_messages(thread_id) if m.id not in known and m.attachments), None)
    )
    assert sheet.content.startswith("🖼️ Mood board · 2 image(s)")

    known = {m.id for m in fake.bot_messages(thread_id)}
    options = {"prompt": "a calm lake", "board": True, "board_start": True}  # the collage as start
    record = await fake.slash("imagine", options, channel_id=thread_id)
    await ephemeral_answer(record)
    from_board = await finished(fake, (await status_message(fake, thread_id, known)).id)
    fields = {f["name"]: f["value"] for f in from_board.embeds[0]["fields"]}
    assert fields["Strength"] == "0.75"

    assert "there is no number 5" in await board("remove", {"number": 5})
    assert "Only whoever added that image" in await board("remove", {"number": 1}, user="bob")
    assert "board holds 1" in await board("remove", {"number": 1})
    assert "Only the project's owner" in await board("clear", user="bob")
    assert "The board is empty" in await board("clear")
    empty = await fake.slash("imagine", {"prompt": "a calm lake", "board": True}, channel_id=thread_id)
    assert "mood board is empty" in await ephemeral_answer(empty)
    fake.assert_clean()
