"""/atelier remove (moderators) and /forget (anyone, their own): messages, feed, lineage and files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import (
    custom_ids,
    delivered,
    ephemeral_answer,
    finished,
    generation_of,
    imagine,
    status_message,
)
from tests.e2e.test_bot_lineage import link
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment


def artifacts_of(deployment: Deployment, owner: str) -> list[Path]:
    """The files of a person's images (their PNGs in the artifact folder)."""
    settings = deployment.settings()
    with sqlite3.connect(settings.database_path) as db:
        rows = db.execute("SELECT artifact FROM images WHERE owner_id = ?", (f"discord:{owner}",)).fetchall()
    return [settings.artifacts_dir / sha[:2] / f"{sha}.png" for (sha,) in rows]


def favourites_of(deployment: Deployment, generation_id: str) -> int:
    with sqlite3.connect(deployment.settings().database_path) as db:
        return int(
            db.execute(
                "SELECT COUNT(*) FROM favourites JOIN images ON images.id = favourites.image_id "
                "WHERE images.generation_id = ?",
                (generation_id,),
            ).fetchone()[0]
        )


async def browse(fake: FakeDiscord, style: str = "isometric") -> str:
    """The feed of one style no other test uses, so the session's other images cannot push this
    test's results off the first page."""
    record = await fake.slash("browse", {"period": "all", "style": style})
    await record.wait_response()
    (page,) = await record.wait_followups(1)
    return str(page.content)


async def test_a_moderator_removes_a_result_and_others_are_refused(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "an unwanted gargoyle --seed 3 --style isometric"})
    result = await finished(fake, status.id)
    await fake.wait_for(lambda: delivered(e2e_deployment, generation_of(result)))  # posted and recorded
    await fake.react(result.id, "1️⃣", user="bob")  # a favourite puts it first in the feed
    await fake.wait_for(lambda: favourites_of(e2e_deployment, generation_of(result)) == 1)
    assert "unwanted gargoyle" in await browse(fake)
    fake.permit_command("atelier", "bob")  # an admin shows /atelier to them (Integrations settings)
    fake.permit_command("atelier", "mod")
    try:
        url = link(fake, thread_id, result.id)
        refused = await fake.slash("atelier", {"link": url}, user="bob", subcommand="remove")
        assert (
            await ephemeral_answer(refused)
            == "Only moderators (Manage Messages in that channel) can remove results."
        )
        assert not fake.messages[result.id].deleted

        before = set(artifacts_of(e2e_deployment, str(fake.users["alice"])))
        removed = await fake.slash("atelier", {"link": url}, user="mod", subcommand="remove")
        assert (await ephemeral_answer(removed)).startswith("Removed 1 image (1 result)")
        assert fake.messages[result.id].deleted
        assert "unwanted gargoyle" not in await browse(fake)
        gone = before - set(artifacts_of(e2e_deployment, str(fake.users["alice"])))
        assert len(gone) == 1 and not any(f.exists() for f in gone)
        again = await fake.slash("atelier", {"link": url}, user="mod", subcommand="remove")
        assert "isn't an Atelier result" in await ephemeral_answer(again)
    finally:
        fake.forget_command_permits("atelier")
    fake.assert_clean()


async def test_forget_all_erases_ones_images_and_leaves_others_remixes_working(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    fake.add_member(fake.guild_id, "carol")
    carol = str(fake.users["carol"])
    status, _ = await imagine(fake, {"prompt": "carol's comet --seed 8 --style isometric"}, user="carol")
    original = await finished(fake, status.id)
    await fake.wait_for(lambda: delivered(e2e_deployment, generation_of(original)))

    # Bob remixes Carol's image (the Remix message menu, then the form).
    menu = await fake.message_command("Remix", original.id, user="bob")
    form = await menu.wait_response()
    threads = set(fake.threads)
    submitted = await fake.submit_modal(
        form.data["custom_id"], {"at:mm:prompt": "bob's comet --seed 9"}, user="bob"
    )
    assert "Remixing" in await ephemeral_answer(submitted)
    remix_thread = await fake.wait_for(
        lambda: next((t for t in fake.threads.values() if t.id not in threads), None)
    )
    remix = await finished(fake, (await status_message(fake, remix_thread.id)).id)
    bobs_files = artifacts_of(e2e_deployment, str(fake.users["bob"]))
    carols_files = artifacts_of(e2e_deployment, carol)
    assert carols_files and all(f.exists() for f in carols_files)
    assert "carol's comet" in await browse(fake)

    record = await fake.slash("forget", {"scope": "all"}, user="carol")
    await record.wait_response()
    (question,) = await record.wait_followups(1)
    assert question.ephemeral and "Forget everything of yours: 1 image(s) in 1 result(s)" in question.content
    assert fake.messages[original.id].deleted is False  # nothing goes before the button
    confirm = await fake.click(question.id, "at:forget:yes", user="carol")
    await confirm.wait_response()
    await fake.wait_for(lambda: fake.messages[question.id].content.startswith("🧹"))
    assert fake.messages[question.id].content.startswith("🧹 Removed 1 image (1 result)")

    assert fake.messages[original.id].deleted
    assert not any(f.exists() for f in carols_files)
    assert artifacts_of(e2e_deployment, carol) == []
    assert all(f.exists() for f in bobs_files) and not fake.messages[remix.id].deleted
    assert "carol's comet" not in await browse(fake)

    lineage = await ephemeral_answer(
        await fake.slash("lineage", {"link": link(fake, remix_thread.id, remix.id)}, user="bob")
    )
    lines = lineage.splitlines()
    assert lines[2].startswith(f"• image 1 by <@{fake.users['bob']}>") and lines[3] == "↳ a removed image"

    # Bob's remix still works: a reroll makes a new result.
    known = {m.id for m in fake.bot_messages(remix_thread.id)}
    reroll = await fake.click(remix.id, f"at:r:{generation_of(remix)}:0", user="bob")
    assert "Rerolling" in await ephemeral_answer(reroll)
    again = await finished(fake, (await status_message(fake, remix_thread.id, known)).id)
    assert again.content.startswith("✅") and any(c.startswith("at:r:") for c in custom_ids(again))
    fake.assert_clean()
