"""/atelier is for server managers: Discord hides it from others, and the use case still checks."""

from __future__ import annotations

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer
from tests.fake_discord import FakeDiscord

MANAGE_GUILD = 1 << 5


async def test_a_plain_member_cannot_invoke_atelier_and_an_admin_can(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    (atelier,) = [c for c in fake.commands if c["name"] == "atelier" and c["type"] == 1]
    assert atelier["default_member_permissions"] == str(MANAGE_GUILD)

    async def roles(user: str) -> str:
        return await ephemeral_answer(
            await fake.slash("atelier", None, user=user, subcommand="train-roles list")
        )

    with pytest.raises(AssertionError, match="hidden from alice"):
        await roles("alice")
    with pytest.raises(AssertionError, match="hidden from mod"):  # Manage Messages is not enough
        await roles("mod")
    fake.roles[fake.moderator_role_id].permissions |= MANAGE_GUILD
    try:
        assert "May train models here" in await roles("mod")
    finally:
        fake.roles[fake.moderator_role_id].permissions &= ~MANAGE_GUILD

    # An admin may show the command to someone else (Server Settings → Integrations); the use
    # case still refuses what only admins may do.
    fake.permit_command("atelier", "alice")
    try:
        record = await fake.slash("atelier", None, user="alice", subcommand="remix-channel add")
        assert "Only server admins" in await ephemeral_answer(record)
    finally:
        fake.forget_command_permits("atelier")
    fake.assert_clean()
