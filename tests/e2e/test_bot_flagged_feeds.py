"""Flagged images stay out of the community surfaces outside age-restricted channels, through the
real bot and fake Discord (the safety classifier flags every image here): /browse and /models
info's sample leave them out in a normal channel and show them in an age-restricted one; /lineage
and a remix of one post no image of it."""

from __future__ import annotations

from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine, new_thread, status_message
from tests.e2e.test_bot_content_policy import FLAGGED, flagging  # noqa: F401 (this module's own world)
from tests.e2e.test_bot_lineage import link
from tests.fake_discord import FakeDiscord, InteractionRecord, MessageRecord


async def followup(record: InteractionRecord) -> MessageRecord:
    await record.wait_response()
    (answer,) = await record.wait_followups(1, timeout=15)
    assert answer.ephemeral
    return answer


async def test_flagged_images_are_left_out_of_feeds_outside_age_restricted_channels(
    flagging: FakeDiscord,  # noqa: F811
) -> None:
    fake = flagging
    status, thread_id = await imagine(fake, {"prompt": "a harbour at night --seed 3", "batch": 2})
    withheld = await finished(fake, status.id)
    assert withheld.content.startswith("✅") and FLAGGED in withheld.content
    after_dark = await fake.add_channel(fake.guild_id, "after-dark-feed", nsfw=True)

    # /browse: nothing here in a normal channel (no line, no Remix action); listed where age-restricted.
    here = await followup(await fake.slash("browse", {"period": "all"}))
    assert "Nothing here yet" in here.content and "harbour" not in here.content, here.content
    assert not [i for i in custom_ids(here) if i.startswith("at:m:")]
    there = await followup(await fake.slash("browse", {"period": "all"}, channel_id=after_dark))
    lines = there.content.splitlines()
    assert len(lines) == 3 and all("a harbour at night" in line for line in lines[1:]), there.content
    assert len([i for i in custom_ids(there) if i.startswith("at:m:")]) == 2

    # /models info: the model's sample is a flagged image, so none is fetched in a normal channel.
    info = {"name": "tiny-sd15"}
    plain = await followup(await fake.slash("models", info, subcommand="info"))
    assert not plain.attachments and plain.embeds[0]["footer"]["text"] == "No sample image yet."
    shown = await followup(await fake.slash("models", info, subcommand="info", channel_id=after_dark))
    assert len(shown.attachments) == 1

    # /lineage answers in words and links; it posts no image.
    lineage = await followup(await fake.slash("lineage", {"link": link(fake, thread_id, withheld.id)}))
    assert lineage.content.startswith("🧬") and not lineage.attachments

    # A remix of it from a normal channel: a new image, classified in turn, and blurred like it.
    menu = await fake.message_command("Remix", withheld.id, user="bob")
    modal = await menu.wait_response()
    assert modal.type == 9
    threads = set(fake.threads)
    submitted = await fake.submit_modal(
        modal.data["custom_id"], {"at:mm:prompt": "a harbour at dawn --seed 3"}, user="bob"
    )
    assert "Remixing" in await ephemeral_answer(submitted)
    thread = await new_thread(fake, threads)
    assert thread.parent_id != after_dark
    remix = await finished(fake, (await status_message(fake, thread.id)).id)
    assert remix.content.startswith("✅") and FLAGGED in remix.content
    assert len(remix.attachments) == 1  # the blurred grid
    fake.assert_clean()
