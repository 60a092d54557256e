"""A queued job's ETA (studio.eta) through the real bot: on its status message and in /status."""

from __future__ import annotations

import re

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine
from tests.fake_discord import FakeDiscord

ETA = r"ready in about \d+ (s|min)"


async def test_a_queued_job_shows_its_place_and_eta(bot: BotProcess, fake: FakeDiscord) -> None:
    # One finished run to estimate from (without any the bot says nothing rather than guess).
    quick, _ = await imagine(fake, {"prompt": "a quick lantern --steps 2"}, user="alice")
    assert (await finished(fake, quick.id)).content.startswith("✅")
    # 512x512, 150 steps: about 10 s on an idle 2-core machine, far longer than the 2 s the
    # queued job's status takes to show its estimate (it shows only while the job waits).
    slow, _ = await imagine(fake, {"prompt": "a long night watch --size 512x512", "steps": 150}, user="alice")
    waiting, _ = await imagine(fake, {"prompt": "a lantern after it --steps 2"}, user="alice")

    def estimated() -> str | None:
        content = fake.messages[waiting.id].content
        return content if re.search(ETA, content) else None

    shown = await fake.wait_for(estimated, timeout=30)
    assert re.match(rf"⏳ Queued — 1 job ahead · {ETA}\. 1× 64×64 · tiny-sd15$", shown), shown
    report = await ephemeral_answer(await fake.slash("status", user="alice"))
    assert re.search(rf"• queued · 1 job ahead · {ETA} · a lantern after it", report), report

    for status in (waiting, slow):
        cancel = next(i for i in custom_ids(status) if i.startswith("at:x:"))
        await ephemeral_answer(await fake.click(status.id, cancel, user="alice"))
    for status in (waiting, slow):
        assert (await finished(fake, status.id, timeout=120)).content.startswith("❌")
    fake.assert_clean()
