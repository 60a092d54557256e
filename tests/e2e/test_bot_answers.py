"""Small truths: a recipe pastes back into /imagine, a dead token is not an apology, and a
restarted bot still knows the server's upload limit."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine, new_thread, status_message
from tests.fake_discord import FakeDiscord, MessageRecord
from tests.integration.workers import Deployment

SMALL_LIMIT = 6_000  # bytes: a 4-image grid PNG of the tiny model is ~40 kB


def fields(result: MessageRecord) -> dict[str, str]:
    return {f["name"]: f["value"] for f in result.embeds[0]["fields"]}


def full_log(bot: BotProcess) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(bot.log_dir.glob("bot-*.log")))


@pytest.fixture(scope="module")
async def own(
    e2e_deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[FakeDiscord, BotProcess]]:
    """A Discord of its own (its clock may be moved; its upload limit is tiny) with its own bot."""
    fake = FakeDiscord(attachment_size_limit=SMALL_LIMIT)
    await fake.start()
    await e2e_deployment.wait_ready()
    folder = tmp_path_factory.mktemp("answers")
    studio = Deployment(
        data_dir=folder / "studio", models_file=e2e_deployment.models_file, prefix=e2e_deployment.prefix
    )
    studio.data_dir.mkdir()
    bot = BotProcess(fake, studio, folder)
    bot.start()
    try:
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        yield fake, bot
    finally:
        bot.stop()
        await fake.stop()


async def test_lineage_recipe_text_of_a_variation_pastes_into_imagine(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "an old oak in fog --seed 21 --steps 3 --cfg 4.5"})
    original = await finished(fake, status.id)
    generation = next(i for i in custom_ids(original) if i.startswith("at:r:")).split(":")[2]
    known = {m.id for m in fake.bot_messages(thread_id)}
    await ephemeral_answer(await fake.click(original.id, f"at:v:{generation}:0"))
    variation = await finished(fake, (await status_message(fake, thread_id, known)).id)
    link = f"https://discord.com/channels/{fake.guild_id}/{thread_id}/{variation.id}"
    recipe_line = (await ephemeral_answer(await fake.slash("lineage", {"link": link}))).splitlines()[1]
    assert recipe_line.startswith("Recipe: `") and recipe_line.endswith("`")
    text = recipe_line.removeprefix("Recipe: `").removesuffix("`")
    assert "--strength 0.35" in text  # an img2img's recipe, as /lineage shows it

    pasted, _ = await imagine(fake, {"prompt": text})
    again = await finished(fake, pasted.id)
    assert again.content.startswith("✅"), again.content
    shown = fields(variation)
    same = {k: v for k, v in fields(again).items() if k != "By"}
    assert "Strength" in shown and "Strength" not in same  # a fresh image, as the text has no init image
    assert same == {k: v for k, v in shown.items() if k not in ("By", "Strength")}
    assert again.embeds[0]["description"] == variation.embeds[0]["description"]
    fake.assert_clean()


async def test_an_answer_too_late_for_its_token_is_a_warning_and_the_result_still_arrives(
    own: tuple[FakeDiscord, BotProcess],
) -> None:
    fake, bot = own
    held = fake.hold("POST", rf"/channels/{fake.channel_id}/threads")  # the project's thread
    threads = set(fake.threads)
    record = await fake.slash("imagine", {"prompt": "a letter that arrived late"})
    assert (await record.wait_response()).type == 5
    await held.wait_arrived()
    fake.advance_interaction_clock(16 * 60)  # the bot was stuck; the token died meanwhile
    held.release()
    thread = await new_thread(fake, threads)
    result = await finished(fake, (await status_message(fake, thread.id)).id)
    assert result.content.startswith("✅")
    await fake.wait_for(lambda: "its interaction token is no longer valid" in full_log(bot), timeout=30)
    log = full_log(bot)
    assert "Traceback" not in log and "ERROR" not in log and "unexpected error" not in log
    assert record.followups == [] and not any(
        r.path.startswith("/webhooks") and r.status < 400 for r in fake.requests
    )
    fake.expect_violation("Invalid Webhook Token")  # the one try, refused as Discord refuses it
    fake.assert_clean()


async def test_a_restarted_bot_fits_resumed_results_to_the_limit_it_was_told_before(
    own: tuple[FakeDiscord, BotProcess],
) -> None:
    fake, bot = own
    held = fake.hold("PATCH", r"/channels/\d+/messages/\d+")  # the status message's first edit
    status, _ = await imagine(fake, {"prompt": "many small boats --seed 3", "batch": 4})
    await held.wait_arrived()
    bot.stop(signal.SIGKILL)
    held.release(drop=True)
    await fake.wait_disconnected()
    restart = len(fake.requests)
    bot.start()
    await fake.wait_connected(timeout=60)
    result = await finished(fake, status.id)
    (grid,) = result.attachments
    assert grid.size <= SMALL_LIMIT
    assert [r for r in fake.requests[restart:] if r.status == 413] == []  # fitted at the first try
    fake.assert_clean()
