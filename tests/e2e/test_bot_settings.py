"""/settings: personal defaults beneath flags and options; server defaults for admins only."""

from __future__ import annotations

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, imagine
from tests.fake_discord import FakeDiscord

MANAGE_GUILD = 1 << 5


def field(message: object, name: str) -> str:
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}  # type: ignore[attr-defined]
    return str(fields[name])


async def test_defaults_apply_in_order_and_server_defaults_need_an_admin(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    async def settings(sub: str, options: dict[str, object] | None = None, user: str = "bob") -> str:
        return await ephemeral_answer(await fake.slash("settings", options, user=user, subcommand=sub))

    try:
        saved = await settings("set", {"aspect": "16:9", "batch": 2, "style": "noir"})
        assert "Saved" in saved and "batch 2" in saved
        status, _ = await imagine(fake, {"prompt": "a desk lamp"}, user="bob")
        result = await finished(fake, status.id)
        assert field(result, "Size") == "112×64" and field(result, "Seed").count("…") == 1  # 16:9, 2 images
        assert field(result, "Style") == "noir"
        status, _ = await imagine(fake, {"prompt": "a desk lamp --batch 1"}, user="bob")
        assert "…" not in field(await finished(fake, status.id), "Seed")  # the flag beats the default

        assert "Only server admins" in await settings("server", {"batch": 3}, user="alice")
        fake.roles[fake.moderator_role_id].permissions |= MANAGE_GUILD
        assert "This server's defaults: batch 3" in await settings("server", {"batch": 3}, user="mod")
        status, _ = await imagine(fake, {"prompt": "a teapot"}, user="alice")
        assert field(await finished(fake, status.id), "Seed").count("…") == 1
        shown = await settings("show", user="alice")
        assert "**Your defaults:** nothing set" in shown and "batch 3" in shown

        assert "Unknown model `nope`" in await settings("set", {"model": "nope"})
        fake.assert_clean()
    finally:
        await settings("reset")
        await settings("server-reset", user="mod")
        fake.roles[fake.moderator_role_id].permissions &= ~MANAGE_GUILD
