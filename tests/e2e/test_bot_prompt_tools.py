"""Prompt tools through the real bot and fake Discord: `{a, b}` permutations (with Confirm/Cancel
above the threshold), `--tile` (a 2x2 preview beside the result) and their bad inputs."""

from __future__ import annotations

import io
import json
import sqlite3
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import (
    custom_ids,
    ephemeral_answer,
    finished,
    generation_count,
    new_thread,
    status_message,
)
from tests.fake_discord import FakeDiscord, MessageRecord
from tests.integration.workers import Deployment


def prompts_since(deployment: Deployment, before: int) -> list[str]:
    with sqlite3.connect(deployment.settings().database_path) as db:
        rows = db.execute("SELECT recipe_json FROM generations ORDER BY rowid").fetchall()
    return [json.loads(row[0])["prompt"] for row in rows[before:]]


async def statuses(fake: FakeDiscord, thread_id: int, count: int) -> list[MessageRecord]:
    def found() -> list[MessageRecord] | None:
        messages = [
            m for m in fake.bot_messages(thread_id) if any(c.startswith("at:x:") for c in custom_ids(m))
        ]
        done = [m for m in fake.bot_messages(thread_id) if m.content.startswith("✅")]
        every = {m.id: m for m in [*messages, *done]}
        return list(every.values()) if len(every) >= count else None

    return await fake.wait_for(found, timeout=30)


async def test_permutations_make_one_job_each_in_one_thread(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    threads, before = set(fake.threads), generation_count(e2e_deployment)
    record = await fake.slash("imagine", {"prompt": "a {red, blue} fox --seed 7"})
    answer = await ephemeral_answer(record)
    assert "2 prompts" in answer
    thread = await new_thread(fake, threads)
    assert thread.name.startswith("a {red, blue} fox")
    for status in await statuses(fake, thread.id, 2):
        assert (await finished(fake, status.id)).content.startswith("✅ Done")
    assert set(fake.threads) == threads | {thread.id}  # one project thread for the set
    assert sorted(prompts_since(e2e_deployment, before)) == ["a blue fox", "a red fox"]
    fake.assert_clean()


async def test_a_large_set_asks_first_cancel_queues_nothing_confirm_queues_all(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    prompt = "a {red, blue, green, gold, grey} kite"  # 5 > permutation_confirm_above (4)
    before = generation_count(e2e_deployment)
    asked = await fake.slash("imagine", {"prompt": prompt}, user="bob")
    await asked.wait_response()
    (question,) = await asked.wait_followups(1, timeout=15)
    assert question.ephemeral and "5 prompts" in question.content
    buttons = custom_ids(question)
    assert [b.rsplit(":", 1)[1] for b in buttons] == ["y", "n"]
    with pytest.raises(AssertionError, match="ephemeral"):  # only bob sees (and answers) it
        await fake.click(question.id, buttons[0], user="alice")
    cancel = await fake.click(question.id, buttons[1], user="bob")
    await cancel.wait_response()
    assert "nothing was queued" in fake.messages[question.id].content
    assert generation_count(e2e_deployment) == before

    asked = await fake.slash("imagine", {"prompt": prompt}, user="bob")
    await asked.wait_response()
    (question,) = await asked.wait_followups(1, timeout=15)
    threads = set(fake.threads)
    confirm = await fake.click(question.id, custom_ids(question)[0], user="bob")
    assert "5 prompts" in await ephemeral_answer(confirm)
    thread = await new_thread(fake, threads)
    for status in await statuses(fake, thread.id, 5):
        assert (await finished(fake, status.id)).content.startswith("✅ Done")
    assert sorted(prompts_since(e2e_deployment, before)) == sorted(
        f"a {colour} kite" for colour in ("red", "blue", "green", "gold", "grey")
    )
    settled = fake.messages[question.id]
    assert not custom_ids(settled) and settled.content.endswith("confirmed.")  # no second click
    fake.assert_clean()


async def test_tile_posts_a_2x2_preview_beside_the_result(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    threads = set(fake.threads)
    record = await fake.slash("imagine", {"prompt": "mossy stone floor --tile --seed 3"})
    await ephemeral_answer(record)
    thread = await new_thread(fake, threads)
    result = await finished(fake, (await status_message(fake, thread.id)).id)
    assert result.content.startswith("✅ Done")
    grid, preview = result.attachments
    assert preview.filename.endswith("-tiled.png")
    image = np.asarray(Image.open(io.BytesIO(grid.bytes)).convert("RGB"))
    sheet = np.asarray(Image.open(io.BytesIO(preview.bytes)).convert("RGB"))
    height, width = image.shape[:2]
    assert sheet.shape[:2] == (2 * height, 2 * width)
    for quarter in (sheet[:height, :width], sheet[height:, width:], sheet[:height, width:]):
        assert np.array_equal(quarter, image)
    fake.assert_clean()


async def test_chaos_batch_is_delivered_and_its_images_are_reproduced_alone(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    """Through the real worker: a chaotic batch runs one call per image; image 2 is made again,
    pixel for pixel, by its own recipe (seed + 1, batch 1)."""

    async def grid(prompt: str) -> np.ndarray:
        threads = set(fake.threads)
        await ephemeral_answer(await fake.slash("imagine", {"prompt": prompt}))
        thread = await new_thread(fake, threads)
        result = await finished(fake, (await status_message(fake, thread.id)).id)
        assert result.content.startswith("✅ Done"), result.content
        return np.asarray(Image.open(io.BytesIO(result.attachments[0].bytes)).convert("RGB"))

    batch = await grid("a harbour, boats, fog, dawn --chaos 100 --batch 2 --seed 11")
    alone = await grid("a harbour, boats, fog, dawn --chaos 100 --seed 12")
    assert batch.shape == (64, 2 * 64 + 2, 3) and alone.shape == (64, 64, 3)
    # the grid's second tile is image 2 (its lower half: the tile number sits top left)
    assert np.array_equal(batch[32:, 64 + 2 :], alone[32:])
    fake.assert_clean()


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"prompt": "a {red, blue fox"}, "without its `}`"),
    ({"prompt": "a red} fox"}, "without its `{`"),
    ({"prompt": "a {red,, blue} fox"}, "empty option"),
    ({"prompt": "{a, b} {c, d} {e, f} {g, h} {i, j} fox"}, "make 32 prompts; the limit is 16"),
    ({"prompt": "a fox --chaos 101"}, "`--chaos` must be between 0 and 100"),
    ({"prompt": "a fox --tile --model tiny-flux"}, "`--tile` works with SD 1.5 and SDXL models only"),
]


@pytest.mark.parametrize(("options", "words"), BAD_INPUT, ids=[w for _, w in BAD_INPUT])
async def test_bad_prompt_tools_get_one_ephemeral_sentence_and_queue_nothing(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment, options: dict[str, Any], words: str
) -> None:
    threads, before = set(fake.threads), generation_count(e2e_deployment)
    answer = await ephemeral_answer(await fake.slash("imagine", options))
    assert words in answer and "Traceback" not in answer
    assert set(fake.threads) == threads and generation_count(e2e_deployment) == before
    fake.assert_clean()
