"""/describe through the real bot, an inference worker and the tiny BLIP captioner: four prompts
with Generate buttons that start /imagine; bad input is one ephemeral sentence and nothing runs."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from bot.exts.describe._cog import HEADER, prompt_in
from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import (
    custom_ids,
    ephemeral_answer,
    finished,
    generation_count,
    new_thread,
    status_message,
)
from tests.e2e.test_bot_forge import TRAIN_TIMEOUT, train, training_status, uploads
from tests.e2e.test_bot_moodboard import link
from tests.e2e.test_bot_remix import BAD_UPLOADS, png_bytes
from tests.fake_discord import FakeDiscord, MessageRecord
from tests.integration.workers import Deployment

DESCRIBE_TIMEOUT = 90


def describe_answers(fake: FakeDiscord) -> list[MessageRecord]:
    return [m for m in fake.bot_messages(fake.channel_id) if m.content.startswith(HEADER)]


async def describe(fake: FakeDiscord, options: dict[str, Any], image: bytes | None = None) -> str:
    attachments = {"image": (image, "photo.png", "image/png")} if image is not None else None
    record = await fake.slash("describe", options, attachments=attachments)
    await record.wait_response()
    # The first description loads the captioner on the worker: longer than ephemeral_answer waits.
    followups = await record.wait_followups(1, timeout=DESCRIBE_TIMEOUT)
    assert followups[0].ephemeral
    return str(followups[0].content)


async def test_describe_gives_four_prompts_whose_buttons_generate(bot: BotProcess, fake: FakeDiscord) -> None:
    known = {m.id for m in describe_answers(fake)}
    answer = await describe(fake, {}, png_bytes(120, 80))
    assert "4 prompts are ready" in answer, answer
    (message,) = [m for m in describe_answers(fake) if m.id not in known]
    prompts = [prompt_in(message.content, n) for n in range(4)]
    assert all(prompts) and len(set(prompts)) == 4, message.content  # four distinct, non-empty
    assert all("--" not in p for p in prompts if p)
    assert custom_ids(message) == ["at:d:0", "at:d:1", "at:d:2", "at:d:3"]

    threads = set(fake.threads)
    pressed = await fake.click(message.id, "at:d:1", user="bob")
    assert "follow along" in await ephemeral_answer(pressed)
    thread = await new_thread(fake, threads)
    result = await finished(fake, (await status_message(fake, thread.id)).id)
    assert result.content.startswith("✅") and result.embeds[0]["description"] == prompts[1]

    # The same image again: the same suggestions (seeded by the image). A link to a message of the
    # bot's with an image (the result grid) works too.
    again = await describe(fake, {}, png_bytes(120, 80))
    assert "4 prompts are ready" in again
    assert describe_answers(fake)[-1].content == message.content
    linked = await describe(fake, {"link": link(fake, thread.id, result.id)})
    assert "4 prompts are ready" in linked, linked
    fake.assert_clean()


BAD = {
    "nothing given": ({}, None, "Give me one image"),
    "both given": ({"link": "https://discord.com/channels/1/2/3"}, png_bytes(64, 64), "Give me one image"),
    "not a link": ({"link": "a lighthouse"}, None, "not a message link"),
    **{name: ({}, data, words) for name, (data, _, _, words) in BAD_UPLOADS.items()},
}


@pytest.mark.parametrize("case", list(BAD))
async def test_bad_input_is_one_sentence_and_nothing_runs(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment, case: str
) -> None:
    options, image, words = BAD[case]
    before, answers = generation_count(e2e_deployment), len(describe_answers(fake))
    answer = await describe(fake, options, image)
    assert words in answer, answer
    assert answer.count(". ") <= 1 and "\n" not in answer  # one sentence
    assert generation_count(e2e_deployment) == before and len(describe_answers(fake)) == answers
    fake.assert_clean()


async def test_a_link_to_a_message_without_an_image(bot: BotProcess, fake: FakeDiscord) -> None:
    await describe(fake, {}, png_bytes(64, 64))  # leaves a bot message with no attachment
    plain = describe_answers(fake)[-1]
    answer = await describe(fake, {"link": link(fake, plain.channel_id, plain.id)})
    assert "That message has no image to describe." in answer
    fake.assert_clean()


async def test_train_caption_auto_captions_the_images_without_alt_text(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    threads = set(fake.threads)
    record = await train(
        fake, {"name": "autocap", "trigger": "zqcap", "caption": "auto"}, user="bob", attachments=uploads(3)
    )
    await record.wait_response()
    (answer,) = await record.wait_followups(1, timeout=DESCRIBE_TIMEOUT)
    assert answer.content.startswith("Training `autocap` v1 on 3 images"), answer.content
    with sqlite3.connect(e2e_deployment.settings().database_path) as db:
        (dataset,) = db.execute("SELECT dataset_json FROM loras WHERE name = 'autocap'").fetchone()
    captions = json.loads(dataset)["captions"]
    assert captions[0] == "zqcap, in the snow"  # its alt text, as before
    assert all(c.startswith("zqcap, ") and len(c) > len("zqcap, ") for c in captions[1:]), captions
    thread = await new_thread(fake, threads)  # the run is not this test's: cancelled by its owner
    status = await fake.wait_for(lambda: training_status(fake, thread.id), timeout=15)
    cancel = [c for c in custom_ids(status) if c.startswith("at:t:x:")]
    if cancel:  # it may already have ended
        await ephemeral_answer(await fake.click(status.id, cancel[0], user="bob"))
    ended = await finished(fake, status.id, timeout=TRAIN_TIMEOUT)
    assert ended.content.startswith(("❌", "✅")), ended.content
    fake.assert_clean()
