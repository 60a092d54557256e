"""Style and character references (--sref/--cref, sref:/cref: attachments, board:) through the real
bot, fake Discord and a real worker on the tiny models with tiny random IP-Adapters."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, generation_count, new_thread, status_message
from tests.e2e.test_bot_remix import bomb
from tests.fake_discord import FakeDiscord, MessageRecord
from tests.integration.workers import Deployment


def png(colour: tuple[int, int, int], size: tuple[int, int] = (96, 80)) -> tuple[bytes, str, str]:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue(), "ref.png", "image/png"


def pixels(message: MessageRecord) -> bytes:
    """The result image's pixels (its PNG text differs with the recipe; the pixels are the output)."""
    return Image.open(io.BytesIO(message.attachments[0].bytes)).convert("RGB").tobytes()


def link(fake: FakeDiscord, channel_id: int, message_id: int, guild: int | None = None) -> str:
    return f"https://discord.com/channels/{guild or fake.guild_id}/{channel_id}/{message_id}"


async def made(
    fake: FakeDiscord,
    options: dict[str, Any],
    channel_id: int | None = None,
    attachments: dict[str, tuple[bytes, str, str]] | None = None,
) -> tuple[MessageRecord, int]:
    """/imagine, then its finished result message and the thread it is in."""
    threads = set(fake.threads)
    known = {m.id for m in fake.bot_messages(channel_id)} if channel_id else set()
    record = await fake.slash("imagine", options, channel_id=channel_id, attachments=attachments)
    answer = await ephemeral_answer(record)
    assert "follow along" in answer, answer
    channel = channel_id or (await new_thread(fake, threads)).id
    result = await finished(fake, (await status_message(fake, channel, known)).id)
    assert result.content.startswith("✅"), result.content
    return result, channel


async def test_sref_and_cref_attachments_change_the_image_reproducibly(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    prompt: dict[str, Any] = {"prompt": "a red fox in the forest --seed 11", "batch": 1}
    plain, _ = await made(fake, prompt)
    styled, _ = await made(fake, prompt, attachments={"sref": png((220, 40, 40))})
    again, _ = await made(fake, prompt, attachments={"sref": png((220, 40, 40))})
    assert pixels(styled) != pixels(plain)
    assert pixels(again) == pixels(styled)  # same seed, same reference: the same image
    character, _ = await made(fake, prompt, attachments={"cref": png((40, 40, 220))})
    assert pixels(character) not in (pixels(plain), pixels(styled))
    both, _ = await made(
        fake,
        {**prompt, "prompt": prompt["prompt"] + " --sw 1.5 --cw 0.5"},
        attachments={"sref": png((220, 40, 40)), "cref": png((40, 40, 220))},
    )
    assert pixels(both) not in (pixels(plain), pixels(styled), pixels(character))
    # The cached pipeline goes back to the plain model for a job without references.
    after, _ = await made(fake, prompt)
    assert pixels(after) == pixels(plain)
    fake.assert_clean()


async def test_a_flux_style_reference_changes_the_image_and_plain_flux_stays_plain(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    prompt: dict[str, Any] = {"prompt": "a red fox in the forest --model tiny-flux --seed 11", "batch": 1}
    plain, _ = await made(fake, prompt)
    styled, _ = await made(fake, prompt, attachments={"sref": png((220, 40, 40))})
    again, _ = await made(fake, prompt, attachments={"sref": png((220, 40, 40))})
    assert pixels(styled) != pixels(plain)
    assert pixels(again) == pixels(styled)  # same seed, same reference: the same image
    # The cached Flux pipeline goes back to the plain transformer for a job without references.
    after, _ = await made(fake, prompt)
    assert pixels(after) == pixels(plain)
    fake.assert_clean()


async def test_the_board_is_a_style_reference_and_board_start_keeps_the_collage(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    first, thread_id = await made(fake, {"prompt": "a harbour at dawn", "batch": 1})
    added = await fake.slash(
        "moodboard", None, channel_id=thread_id, subcommand="add", attachments={"image": png((30, 160, 60))}
    )
    assert "board holds 1" in await ephemeral_answer(added)
    prompt: dict[str, Any] = {"prompt": "a calm lake --seed 5", "batch": 1}
    plain, _ = await made(fake, prompt, channel_id=thread_id)
    from_board, _ = await made(fake, {**prompt, "board": True}, channel_id=thread_id)
    again, _ = await made(fake, {**prompt, "board": True}, channel_id=thread_id)
    assert pixels(from_board) != pixels(plain) and pixels(again) == pixels(from_board)
    fields = {f["name"]: f["value"] for f in from_board.embeds[0]["fields"]}
    assert "Strength" not in fields  # a reference, not an img2img start
    collage, _ = await made(fake, {**prompt, "board": True, "board_start": True}, channel_id=thread_id)
    assert {f["name"]: f["value"] for f in collage.embeds[0]["fields"]}["Strength"] == "0.75"
    # --sref with a link to an Atelier result, and "board" as a flag, add up.
    linked, _ = await made(
        fake,
        {**prompt, "prompt": f"a calm lake --seed 5 --sref {link(fake, thread_id, first.id)} --sref board"},
        channel_id=thread_id,
    )
    assert pixels(linked) not in (pixels(plain), pixels(from_board))
    fake.assert_clean()


BAD = {
    "weight out of range": ("a cat --sw 3", {"sref": png((1, 2, 3))}, "`--sw` must be between 0 and 2"),
    "not an image": (
        "a cat",
        {"sref": (b"hello, I am text", "notes.png", "image/png")},
        "not an image I can read",
    ),
    "too many pixels": ("a cat", {"cref": (bomb(), "bomb.png", "image/png")}, "far too many pixels"),
    "no adapter for the family": (
        "a cat --model tiny-sd3",
        {"sref": png((1, 2, 3))},
        "SD 3.5 models take no reference images",
    ),
    "no character adapter": ("a cat --model tiny-sdxl", {"cref": png((1, 2, 3))}, "no character references"),
    "no Flux character adapter": (
        "a cat --model tiny-flux",
        {"cref": png((1, 2, 3))},
        "Flux.1 models take no character references",
    ),
    "not a source": ("a cat --sref somewhere", None, "takes `board`, `favourites` or a message link"),
    "board outside a project": ("a cat --sref board", None, "inside an Atelier project thread"),
    "weight without images": ("a cat --cw 0.5", None, "`--cw` weighs the `--cref` images"),
}


@pytest.mark.parametrize("case", list(BAD))
async def test_bad_references_are_refused_in_one_sentence_and_nothing_is_queued(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment, case: str
) -> None:
    prompt, attachments, words = BAD[case]
    threads, before = set(fake.threads), generation_count(e2e_deployment)
    record = await fake.slash("imagine", {"prompt": prompt}, attachments=attachments)
    answer = await ephemeral_answer(record)
    assert words in answer, answer
    assert answer.count(". ") == 0 or answer.endswith("."), answer
    assert set(fake.threads) == threads and generation_count(e2e_deployment) == before
    fake.assert_clean()


async def test_links_without_an_image_or_to_another_server_are_refused(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    result, thread_id = await made(fake, {"prompt": "a lighthouse", "batch": 1})
    intro = fake.bot_messages(thread_id)[0]  # the project's introduction: no image
    cases = {
        link(fake, thread_id, intro.id): "no image to use as a reference",
        link(fake, thread_id, result.id, guild=7): "another server",
    }
    for source, words in cases.items():
        threads, before = set(fake.threads), generation_count(e2e_deployment)
        record = await fake.slash("imagine", {"prompt": f"a boat --sref {source}"})
        answer = await ephemeral_answer(record)
        assert words in answer, answer
        assert set(fake.threads) == threads and generation_count(e2e_deployment) == before
    fake.assert_clean()


async def test_favourites_are_a_reference_source(bot: BotProcess, fake: FakeDiscord) -> None:
    result, thread_id = await made(fake, {"prompt": "two green kites --seed 3", "batch": 2})
    menu = next(c for m in result.components for c in _ids(m) if c.startswith("at:f:"))
    pick = await fake.select(result.id, menu, ["0"], user="alice")
    assert "Your favourites in this batch: 1" in await ephemeral_answer(pick)
    prompt: dict[str, Any] = {"prompt": "a quiet street --seed 9", "batch": 1}
    plain, _ = await made(fake, prompt, channel_id=thread_id)
    faved, _ = await made(
        fake, {**prompt, "prompt": "a quiet street --seed 9 --cref favourites"}, channel_id=thread_id
    )
    assert pixels(faved) != pixels(plain)
    if "refnewcomer" not in fake.users:  # someone with no favourites (bob may have some by now)
        fake.add_member(fake.guild_id, "refnewcomer")
    none = await fake.slash("imagine", {"prompt": "a quiet street --sref favourites"}, user="refnewcomer")
    assert "You have no favourites here yet" in await ephemeral_answer(none)
    fake.assert_clean()


def _ids(component: dict[str, Any]) -> list[str]:
    found = [component["custom_id"]] if "custom_id" in component else []
    for child in component.get("components", []):
        found += _ids(child)
    return found
