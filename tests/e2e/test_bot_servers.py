"""One bot, several servers: the community feed of one never shows another's images or links.

The session's fake Discord has two guilds the bot is in: the default one (alice, bob, mod) and
a second one (alice, carol). A person can only open a jump link into a server they belong to.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import finished, imagine, new_thread, status_message
from tests.fake_discord import FakeDiscord, GuildRecord, MessageRecord


def next_button(page: MessageRecord) -> dict[str, Any]:
    def walk(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = []
        for component in components:
            found.append(component)
            found += walk(component.get("components", []))
        return found

    return next(
        c
        for c in walk(page.components)
        if str(c.get("custom_id", "")).startswith("at:b:") and c.get("label", "").startswith("Next")
    )


async def imagine_in(fake: FakeDiscord, guild: GuildRecord, prompt: str) -> MessageRecord:
    """carol's /imagine in the guild's text channel: the status message in its new project thread."""
    threads = set(fake.threads)
    record = await fake.slash("imagine", {"prompt": prompt}, user="carol", channel_id=guild.channel_id)
    assert (await record.wait_response()).type == 5
    thread = await new_thread(fake, threads)
    assert thread.guild_id == guild.id
    return await status_message(fake, thread.id)


async def whole_feed(fake: FakeDiscord, user: str, channel_id: int) -> list[tuple[str, list[str]]]:
    """Every page of ``/browse period:all`` run by ``user`` in ``channel_id``: (text, jump links)."""
    record = await fake.slash("browse", {"period": "all"}, user=user, channel_id=channel_id)
    await record.wait_response()
    (page,) = await record.wait_followups(1, timeout=15)
    pages = [(page.content, fake.links_in(page))]
    for number in range(2, 200):
        button = next_button(fake.messages[page.id])
        if button.get("disabled"):
            return pages
        await fake.click(page.id, button["custom_id"], user=user)
        shown = await fake.wait_for(
            lambda n=number: (
                fake.messages[page.id] if f"· page {n}" in fake.messages[page.id].content else None
            )
        )
        pages.append((shown.content, fake.links_in(shown)))
    raise AssertionError("the feed never ended")


async def test_browse_in_one_server_never_shows_anothers_images(
    bot: BotProcess, fake: FakeDiscord, second_guild: GuildRecord
) -> None:
    status_a, _ = await imagine(fake, {"prompt": "a zebra lantern only in the first server"}, user="bob")
    in_a = await finished(fake, status_a.id)
    status_b = await imagine_in(fake, second_guild, "a quokka lantern only in the second server")
    in_b = await finished(fake, status_b.id)
    assert in_a.content.startswith("✅") and in_b.content.startswith("✅")
    assert fake.guild_of(in_b.channel_id).id == second_guild.id != fake.guild_of(in_a.channel_id).id

    # carol (only in the second server), and alice (in both) browsing from the second server.
    for user in ("carol", "alice"):
        pages = await whole_feed(fake, user, second_guild.channel_id)
        text = "\n".join(content for content, _ in pages)
        assert "quokka lantern" in text and "zebra lantern" not in text, text
        links = [link for _, found in pages for link in found]
        assert links and all(fake.guild_of(int(link.split("/")[5])).id == second_guild.id for link in links)
        assert all(fake.can_open("carol", link) for link in links)

    # bob browsing from the first server sees its image, with a link he can open, and not the other.
    pages = await whole_feed(fake, "bob", fake.channel_id)
    text = "\n".join(content for content, _ in pages)
    assert "zebra lantern" in text and "quokka lantern" not in text, text
    links = [link for _, found in pages for link in found]
    assert any(str(in_a.id) in link for link in links)
    assert all(fake.can_open("bob", link) for link in links)
    fake.assert_clean()
