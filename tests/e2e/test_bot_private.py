"""A private project through the real bot: its owner sees and uses it, another member cannot."""

from __future__ import annotations

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, new_thread, status_message
from tests.fake_discord import FakeDiscord


async def test_a_private_project_is_visible_to_its_owner_and_not_to_another_member(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    threads = set(fake.threads)
    record = await fake.slash("imagine", {"prompt": "a hidden orchard", "private": True, "batch": 2})
    await record.wait_response()
    thread = await new_thread(fake, threads)
    assert thread.private and not thread.invitable
    result = await finished(fake, (await status_message(fake, thread.id)).id)
    assert result.content.startswith("✅"), result.content

    # The owner was added to the thread: the mention in the intro pings no one, so it adds no one.
    assert fake.users["alice"] in fake.thread_members(thread.id)
    assert fake.can_see("alice", thread.id) and fake.can_open("alice", fake.jump_link(result))
    intro = fake.bot_messages(thread.id)[0]
    assert "Private project" in intro.content and not fake.pings_anyone(intro)
    menu = next(i for i in custom_ids(result) if i.startswith("at:f:"))
    pick = await fake.select(result.id, menu, ["1"], user="alice")
    assert "2" in await ephemeral_answer(pick)

    # Bob is in the server but not in the thread: he sees nothing and can press nothing.
    assert fake.users["bob"] not in fake.thread_members(thread.id)
    assert not fake.can_see("bob", thread.id) and not fake.can_open("bob", fake.jump_link(result))
    with pytest.raises(AssertionError, match="cannot see"):
        await fake.select(result.id, menu, ["0"], user="bob")
    reroll = next(i for i in custom_ids(result) if i.startswith("at:r:"))
    with pytest.raises(AssertionError, match="cannot see"):
        await fake.click(result.id, reroll, user="bob")
    with pytest.raises(AssertionError, match="cannot see"):
        await fake.slash("imagine", {"prompt": "gatecrash"}, user="bob", channel_id=thread.id)
    fake.assert_clean()
