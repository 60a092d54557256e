"""Live previews through the real bot, worker and fake Discord: a running job's status message
shows a small picture of its current step, and a server can turn them off (/settings previews)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine, in_progress
from tests.fake_discord import FakeDiscord, MessageRecord

MANAGE_GUILD = 1 << 5


def preview_edits(message: MessageRecord) -> list[dict[str, Any]]:
    """The edits that attached a file while the job ran (its progress edits)."""
    return [
        payload
        for _, payload in message.edits
        if payload.get("attachments") and str(payload.get("content", "")).startswith("🎨")
    ]


async def cancel(fake: FakeDiscord, status: MessageRecord) -> MessageRecord:
    button = next(i for i in custom_ids(status) if i.startswith("at:x:"))
    assert "Cancelling" in await ephemeral_answer(await fake.click(status.id, button, user="alice"))
    return await finished(fake, status.id, timeout=60)


async def test_a_running_job_shows_live_previews_unless_the_server_turns_them_off(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    async def previews(state: str, user: str = "mod") -> str:
        record = await fake.slash("settings", {"state": state}, user=user, subcommand="previews")
        return await ephemeral_answer(record)

    # 512x512 x 150 steps: well over a minute on this CPU; cancelled once it has shown what we need.
    status, _ = await imagine(fake, {"prompt": "a slow tide --size 512x512", "steps": 150})
    generation = next(i for i in custom_ids(status) if i.startswith("at:x:")).split(":")[2]
    await fake.wait_for(lambda: in_progress(generation), timeout=60, interval=0.1)
    await fake.wait_for(lambda: preview_edits(fake.messages[status.id]) or None, timeout=120)
    shown = fake.messages[status.id]
    assert shown.content.startswith("🎨 Generating")
    (picture,) = shown.attachments
    # Small: 1-16 KB measured (early steps look like noise, which compresses worst), far under
    # the bot's 256 KB cap and any upload limit.
    assert picture.filename == "preview.webp" and picture.size < 32_000
    assert Image.open(io.BytesIO(picture.bytes)).size == (192, 192)
    ended = await cancel(fake, status)
    assert ended.content.startswith("❌ Cancelled") and ended.attachments == []  # the preview is gone

    assert "Only server admins" in await previews("off", user="alice")
    fake.roles[fake.moderator_role_id].permissions |= MANAGE_GUILD
    try:
        assert "no longer show live previews" in await previews("off")
        status, _ = await imagine(fake, {"prompt": "a dark tide --size 512x512", "steps": 150})
        message = fake.messages[status.id]
        # Progress edits every 1.5 s; previews would come every 3 s: wait out three progress edits.
        await fake.wait_for(
            lambda: sum(str(p.get("content", "")).startswith("🎨") for _, p in message.edits) >= 3 or None,
            timeout=120,
        )
        assert preview_edits(message) == [] and message.attachments == []
        await cancel(fake, status)
    finally:
        assert "now show live previews" in await previews("on")
        fake.roles[fake.moderator_role_id].permissions &= ~MANAGE_GUILD
    fake.assert_clean()
