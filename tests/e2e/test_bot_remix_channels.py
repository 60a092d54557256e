"""Community remix: admins mark remix channels, public results are shared there, anyone remixes."""

from __future__ import annotations

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import (
    custom_ids,
    delivered,
    ephemeral_answer,
    finished,
    generation_of,
    imagine,
    new_thread,
    status_message,
)
from tests.fake_discord import FakeDiscord, MessageRecord
from tests.integration.workers import Deployment

MANAGE_GUILD = 1 << 5


def shares(fake: FakeDiscord) -> list[MessageRecord]:
    return [m for m in fake.bot_messages(fake.channel_id) if m.content.startswith("🔀")]


async def test_share_remix_with_modal_and_reaction(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    async def channels(sub: str, user: str) -> str:
        record = await fake.slash("atelier", None, user=user, subcommand=f"remix-channel {sub}")
        return await ephemeral_answer(record)

    with pytest.raises(AssertionError, match="hidden from alice"):  # /atelier: server managers only
        await channels("add", "alice")
    fake.roles[fake.moderator_role_id].permissions |= MANAGE_GUILD
    try:
        assert f"Remix channels now: <#{fake.channel_id}>" in await channels("add", "mod")
        before = len(shares(fake))
        status, _ = await imagine(fake, {"prompt": "a lighthouse in spring --seed 3"})
        original = await finished(fake, status.id)
        share = await fake.wait_for(lambda: shares(fake)[before] if len(shares(fake)) > before else None)
        assert "a lighthouse in spring" in share.content and len(share.attachments) == 1
        assert not fake.pings_anyone(share)
        generation = next(i for i in custom_ids(original) if i.startswith("at:r:")).split(":")[2]
        assert custom_ids(share) == [f"at:m:{generation}:0"]

        # The Remix button opens a modal prefilled with the recipe; the remix gets its own thread.
        click = await fake.click(share.id, f"at:m:{generation}:0", user="bob")
        response = await click.wait_response()
        assert response.type == 9 and "a lighthouse in spring" in str(response.data)
        threads = set(fake.threads)
        submitted = await fake.submit_modal(
            response.data["custom_id"], {"at:mm:prompt": "a lighthouse in autumn --seed 5"}, user="bob"
        )
        assert "Remixing" in await ephemeral_answer(submitted)
        thread = await new_thread(fake, threads)
        assert thread.name.startswith("Remix: a lighthouse in autumn")
        remix = await finished(fake, (await status_message(fake, thread.id)).id)
        assert "a lighthouse in autumn" in remix.embeds[0]["description"]

        link = f"https://discord.com/channels/{fake.guild_id}/{thread.id}/{remix.id}"
        lineage = await ephemeral_answer(await fake.slash("lineage", {"link": link}, user="bob"))
        assert f"image 1 by <@{fake.users['alice']}>" in lineage and "remixed 1×" in lineage

        # 🔀 on the shared post clones it straight away.
        threads = set(fake.threads)
        await fake.react(share.id, "🔀", user="bob")
        clone_thread = await new_thread(fake, threads)
        clone = await finished(fake, (await status_message(fake, clone_thread.id)).id)
        assert "a lighthouse in spring" in clone.embeds[0]["description"]

        # Private results are never shared.
        private, _ = await imagine(fake, {"prompt": "my own lighthouse", "private": True})
        generation = generation_of(await finished(fake, private.id))
        # Sharing follows the result edit, then the delivery is recorded: after that, it is too late.
        await fake.wait_for(lambda: delivered(e2e_deployment, generation))
        assert not any("my own lighthouse" in m.content for m in shares(fake))
        assert "Removed" in await channels("remove", "mod")
        fake.assert_clean()
    finally:
        fake.roles[fake.moderator_role_id].permissions &= ~MANAGE_GUILD
