"""Other members' images reach /moodboard and /train with no privileged intent: through the
message menus, since Discord blanks their messages when the bot reads them by link."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine
from tests.e2e.test_bot_forge import QUICK, training_status
from tests.fake_discord import FakeDiscord
from tests.fake_discord.state import PRIVILEGED_INTENTS


def sketch(seed: int) -> tuple[bytes, str, str]:
    image = Image.new("RGB", (96, 96), (20 * seed, 90, 160))
    ImageDraw.Draw(image).rectangle((20, 20, 60 + seed, 70), fill=(240, 200, 40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue(), f"sketch{seed}.png", "image/png"


async def test_member_images_feed_the_board_and_training_through_the_message_menus(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    assert not fake.bot_intents() & PRIVILEGED_INTENTS  # the bot asks for no privileged intent
    if "dana" not in fake.users:  # a person of her own: the daily training quota is per person
        fake.add_member(fake.guild_id, "dana")
    status, thread_id = await imagine(fake, {"prompt": "a quiet harbour"}, user="dana")
    await finished(fake, status.id)
    # Bob posts three reference images in dana's (public) project thread.
    refs = await fake.send_user_message(
        "my sketches", user="bob", channel_id=thread_id, attachments=[sketch(i) for i in range(3)]
    )
    link = fake.jump_link(refs)

    async def answer_to(name: str, options: dict[str, object], subcommand: str | None = None) -> str:
        record = await fake.slash(name, options, user="dana", channel_id=thread_id, subcommand=subcommand)
        return await ephemeral_answer(record)

    # A link to a member's message reads as empty without Message Content: the bot says where to go.
    refused = await answer_to("moodboard", {"link": link}, subcommand="add")
    assert "can't see the images in other people's messages" in refused and "“Add to mood board”" in refused
    added = await fake.message_command("Add to mood board", refs.id, user="dana")
    assert "Added 3 image(s); the board holds 3" in await ephemeral_answer(added)

    train = {"name": "harbour", "trigger": "zqhb", **QUICK}
    refused = await answer_to("train", {**train, "link": link})
    assert "“Add to training set”" in refused
    assert "training set is empty" in await answer_to("train", {**train, "source": "set"})
    gathered = await fake.message_command("Add to training set", refs.id, user="dana")
    assert "Added 3 image(s) to your training set; it holds 3" in await ephemeral_answer(gathered)
    started = await answer_to("train", {**train, "source": "set"})
    assert started.startswith("Training `harbour` v1 on 3 images"), started
    assert "training set is empty again" in started

    # Only the menus were needed; the run itself is not the point here: stop it to free the worker.
    run = await fake.wait_for(lambda: training_status(fake, thread_id), timeout=15)
    (cancel,) = [c for c in custom_ids(run) if c.startswith("at:t:x:")]
    await ephemeral_answer(await fake.click(run.id, cancel, user="dana"))
    ended = await finished(fake, run.id, timeout=120)
    assert ended.content.startswith(("❌", "✅")), ended.content
    assert "training set is empty" in await answer_to("train", {**train, "name": "again", "source": "set"})
    fake.assert_clean()
