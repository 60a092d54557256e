"""Links from Discord into the web studio: /web, and "Open in studio" on delivered results.

With ``ATELIER_API_PUBLIC_URL`` set (a bot of its own, on a Discord of its own with a second server)
the links point at the right server's pages; the session's bot has none, and shows no links.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, finished, imagine
from tests.fake_discord import FakeDiscord, GuildRecord
from tests.fake_discord.state import MessageRecord
from tests.integration.workers import Deployment

PUBLIC = "https://studio.example.test"


def links(message: MessageRecord) -> list[tuple[str, str]]:
    """(label, url) of the message's link buttons."""
    found: list[tuple[str, str]] = []

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if component.get("type") == 2 and component.get("style") == 5:
                found.append((component["label"], component["url"]))
            walk(component.get("components", []))

    walk(message.components)
    return found


async def web_answer(fake: FakeDiscord, user: str = "alice", channel_id: int | None = None) -> MessageRecord:
    record = await fake.slash("web", user=user, channel_id=channel_id)
    assert (await record.wait_response()).type == 5  # acknowledged first, like every command
    (answer,) = await record.wait_followups(1, timeout=15)
    assert answer.ephemeral
    return answer


def generation_of(result: MessageRecord) -> str:
    return next(i for i in custom_ids(result) if i.startswith("at:r:")).split(":")[2]


@pytest.fixture(scope="module")
async def linked(
    e2e_deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[FakeDiscord, GuildRecord]]:
    """A Discord of its own (with a second server alice is in) and a bot whose web studio has a
    public URL (given with a trailing slash, as operators write it)."""
    fake = FakeDiscord()
    await fake.start()
    elsewhere = await fake.add_guild("Elsewhere", members=["alice"])
    await e2e_deployment.wait_ready()
    tmp = tmp_path_factory.mktemp("web-links")
    own = Deployment(
        data_dir=tmp / "studio", models_file=e2e_deployment.models_file, prefix=e2e_deployment.prefix
    )
    own.data_dir.mkdir()
    bot = BotProcess(fake, own, tmp, extra_env={"ATELIER_API_PUBLIC_URL": PUBLIC + "/"})
    bot.start()
    try:
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        yield fake, elsewhere
    finally:
        bot.stop()
        await fake.stop()


async def test_web_links_the_servers_gallery_and_the_persons_library(
    linked: tuple[FakeDiscord, GuildRecord],
) -> None:
    fake, elsewhere = linked
    (web,) = [c for c in fake.commands if c["name"] == "web"]
    assert web["default_member_permissions"] is None  # every member sees it

    here = await web_answer(fake)
    assert here.content.startswith("**Atelier's web studio** for ")
    assert links(here) == [
        ("Gallery", f"{PUBLIC}/s/{fake.guild_id}/gallery"),
        ("Your library", f"{PUBLIC}/s/{fake.guild_id}/library"),
    ]
    there = await web_answer(fake, channel_id=elsewhere.channel_id)
    assert links(there) == [
        ("Gallery", f"{PUBLIC}/s/{elsewhere.id}/gallery"),
        ("Your library", f"{PUBLIC}/s/{elsewhere.id}/library"),
    ]
    assert links(await web_answer(fake, user="bob")) == links(here)  # the same pages for everyone
    # Server managers also find it under /atelier (shown to them only), with the same links.
    fake.permit_command("atelier", "alice")
    try:
        record = await fake.slash("atelier", None, user="alice", subcommand="web")
        (managers,) = await record.wait_followups(1, timeout=15)
        assert managers.ephemeral and links(managers) == links(here)
    finally:
        fake.forget_command_permits("atelier")
    assert not fake.pings_anyone(here)
    fake.assert_clean()


async def test_results_open_in_the_studio(linked: tuple[FakeDiscord, GuildRecord]) -> None:
    fake, _ = linked
    # A single image: one link to its page. A private one too: the page lets its owner in.
    status, _ = await imagine(fake, {"prompt": "a paper boat --seed 3", "private": True})
    single = await finished(fake, status.id)
    assert single.content.startswith("✅")
    gid = generation_of(single)
    assert links(single) == [("Open in studio", f"{PUBLIC}/s/{fake.guild_id}/images/{gid}/0")]

    # A batch: a link per image, beside the U/V/🔁 buttons and the favourites menu.
    status, thread_id = await imagine(fake, {"prompt": "three paper boats --seed 4", "batch": 3})
    batch = await finished(fake, status.id)
    gid = generation_of(batch)
    pages = [f"{PUBLIC}/s/{fake.guild_id}/images/{gid}/{i}" for i in range(3)]
    assert links(batch) == [(f"Studio {i + 1}", pages[i]) for i in range(3)]
    assert {f"at:{a}:{gid}:{i}" for a in "uv" for i in range(3)} <= set(custom_ids(batch))

    # U2 posts image 2 on its own, with a link to that image's page.
    await fake.click(batch.id, f"at:u:{gid}:1")
    posted = await fake.wait_for(
        lambda: next((m for m in fake.bot_messages(thread_id) if m.content.startswith("Image 2")), None),
        timeout=60,
    )
    assert links(posted) == [("Open in studio", pages[1])]
    fake.assert_clean()


async def test_without_a_public_url_there_are_no_links(bot: BotProcess, fake: FakeDiscord) -> None:
    answer = await web_answer(fake)
    assert "isn't set up" in answer.content and "ATELIER_API_PUBLIC_URL" in answer.content
    assert answer.components == []
    status, _ = await imagine(fake, {"prompt": "an unlinked boat --seed 5", "batch": 2})
    result = await finished(fake, status.id)
    assert result.content.startswith("✅") and links(result) == []
    fake.assert_clean()
