"""Content policy through the real bot and the fake Discord: a blocked prompt is refused in one
ephemeral sentence; a flagged image is blurred (and not posted by U) in a normal channel, and
shown as it is in a channel Discord marks age-restricted (a thread: its parent's flag)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine, new_thread, status_message
from tests.e2e.test_bot_finish import link
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment

MANAGE_GUILD = 1 << 5
FLAGGED = "flagged by this server's image safety check"


def flagging_catalogue(catalogue: Path, classifier: Path, folder: Path) -> Path:
    models = folder / "models.toml"
    safety = f'[safety]\nsource = "{classifier}"\nflagged_labels = ["nsfw"]\nthreshold = 0.0\n'
    models.write_text(catalogue.read_text() + "\n" + safety)
    return models


@pytest.fixture(scope="module")
async def flagging(
    tiny_catalogue: Path, tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FakeDiscord]:
    """Its own Discord, bot and workers, whose safety classifier flags every image (threshold 0)."""
    folder = tmp_path_factory.mktemp("policy")
    models = flagging_catalogue(tiny_catalogue, tiny_models["tiny-safety"], folder)
    deployment = Deployment(data_dir=folder / "studio", models_file=models)
    deployment.data_dir.mkdir()
    deployment.start_worker("inference")
    deployment.start_worker("post")
    fake = FakeDiscord()
    await fake.start()
    fake.roles[fake.moderator_role_id].permissions |= MANAGE_GUILD
    bot = BotProcess(fake, deployment, folder)
    try:
        await deployment.wait_ready()
        bot.start()
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        yield fake
    finally:
        bot.stop()
        await fake.stop()
        deployment.stop()


async def test_a_blocked_prompt_is_refused_without_repeating_the_term(flagging: FakeDiscord) -> None:
    fake = flagging
    with pytest.raises(AssertionError, match="hidden from alice"):  # /atelier: server managers only
        await fake.slash("atelier", {"kind": "word", "text": "gore"}, user="alice", subcommand="policy add")
    added = await ephemeral_answer(
        await fake.slash("atelier", {"kind": "word", "text": "Gore"}, user="mod", subcommand="policy add")
    )
    assert added == "Blocked the word `gore` in prompts here."
    bad = await ephemeral_answer(
        await fake.slash("atelier", {"kind": "regex", "text": "(a+)+"}, user="mod", subcommand="policy add")
    )
    assert "take very long to check" in bad
    listed = await ephemeral_answer(await fake.slash("atelier", None, user="mod", subcommand="policy list"))
    assert listed == "Blocked in prompts here:\nword: `gore`"
    threads = set(fake.threads)
    answer = await ephemeral_answer(await fake.slash("imagine", {"prompt": "a GORE scene, @everyone"}))
    assert answer.startswith("Your prompt uses a word or phrase this server does not allow")
    assert "gore" not in answer.lower()
    assert set(fake.threads) == threads, "nothing was started"
    removed = await ephemeral_answer(
        await fake.slash("atelier", {"kind": "word", "text": "gore"}, user="mod", subcommand="policy remove")
    )
    assert removed.startswith("Removed")
    fake.assert_clean()


async def test_a_flagged_image_is_blurred_in_a_normal_channel_and_shown_in_an_age_restricted_one(
    flagging: FakeDiscord,
) -> None:
    fake = flagging
    prompt = {"prompt": "a lighthouse --seed 11", "batch": 2}
    status, thread_id = await imagine(fake, prompt)
    withheld = await finished(fake, status.id)
    assert withheld.content.startswith("✅") and FLAGGED in withheld.content
    assert "Images 1, 2 were" in withheld.content and "age-restricted" in withheld.content
    (blurred,) = withheld.attachments
    # U on a flagged image here posts nothing; the owner is told why.
    generation = next(i for i in custom_ids(withheld) if i.startswith("at:r:")).split(":")[2]
    before = len(fake.bot_messages(thread_id))
    refusal = await ephemeral_answer(await fake.click(withheld.id, f"at:u:{generation}:0"))
    assert refusal.startswith("Image 1 was " + FLAGGED) and "not posted here" in refusal
    # Nor do the finishing commands, given a link to it.
    upscale = {"link": link(fake, withheld), "number": 2, "factor": 2}
    refused = await ephemeral_answer(await fake.slash("upscale", upscale, channel_id=thread_id))
    assert refused.startswith("Image 2 was " + FLAGGED) and "not finished here" in refused
    assert len(fake.bot_messages(thread_id)) == before

    after_dark = await fake.add_channel(fake.guild_id, "after-dark", nsfw=True)
    threads = set(fake.threads)
    assert (await (await fake.slash("imagine", prompt, channel_id=after_dark)).wait_response()).type == 5
    thread = await new_thread(fake, threads)
    assert thread.parent_id == after_dark  # a thread has no nsfw flag of its own: its parent's counts
    status = await status_message(fake, thread.id)
    shown = await finished(fake, status.id)
    assert shown.content.startswith("✅") and FLAGGED not in shown.content
    (clear,) = shown.attachments
    assert clear.bytes != blurred.bytes  # the same seeds, unblurred
    generation = next(i for i in custom_ids(shown) if i.startswith("at:r:")).split(":")[2]
    posted = await ephemeral_answer(await fake.click(shown.id, f"at:u:{generation}:0"))
    assert "Posted image 1" in posted
    fake.assert_clean()
