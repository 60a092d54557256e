"""Message context menus: "Show recipe", "Remix" and "Add to mood board"."""

from __future__ import annotations

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, imagine, new_thread, status_message
from tests.fake_discord import FakeDiscord


async def test_message_menus(bot: BotProcess, fake: FakeDiscord) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a paper crane --seed 21"})
    result = await finished(fake, status.id)
    synced = {(c["name"], c["type"]) for c in fake.commands}
    assert {("Show recipe", 3), ("Remix", 3), ("Add to mood board", 3)} <= synced

    recipe = await ephemeral_answer(await fake.message_command("Show recipe", result.id, user="bob"))
    assert recipe.startswith("🧬 **Image 1** · seed 21") and "a paper crane" in recipe
    intro = fake.bot_messages(thread_id)[0].id  # the project's introduction, no image
    unknown = await fake.message_command("Show recipe", intro, user="bob")
    assert "I don't know that message" in await ephemeral_answer(unknown)

    opened = await fake.message_command("Remix", result.id, user="bob")
    modal = await opened.wait_response()
    assert modal.type == 9 and "a paper crane" in str(modal.data)
    threads = set(fake.threads)
    submitted = await fake.submit_modal(
        modal.data["custom_id"], {"at:mm:prompt": "a paper boat --seed 2"}, user="bob"
    )
    assert "Remixing" in await ephemeral_answer(submitted)
    remix_thread = await new_thread(fake, threads)
    remix = await finished(fake, (await status_message(fake, remix_thread.id)).id)
    assert "a paper boat" in remix.embeds[0]["description"]

    secret, _ = await imagine(fake, {"prompt": "a private crane", "private": True})
    secret_result = await finished(fake, secret.id)
    # Only its owner and moderators (Manage Threads) see a private thread; the image stays the owner's.
    refused = await (await fake.message_command("Remix", secret_result.id, user="mod")).wait_response()
    # Refused before any form opens: the answer is the (ephemeral) first response itself.
    assert refused.type == 4 and refused.data["flags"] & 64
    assert "That image does not exist" in refused.data["content"]
    hidden = await fake.message_command("Show recipe", secret_result.id, user="mod")
    assert "That image does not exist" in await ephemeral_answer(hidden)

    added = await fake.message_command("Add to mood board", result.id)
    assert "the board holds 1" in await ephemeral_answer(added)
    fake.assert_clean()
