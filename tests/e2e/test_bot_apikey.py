"""/apikey through the real bot, and the key at work against the real API process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.server import ApiServer
from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, imagine, status_message
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment

TOKEN = re.compile(r"\batl_[A-Za-z0-9_-]{43}\b")
SECRET = re.compile(r"\bwhsec_[A-Za-z0-9_-]{43}\b")


@pytest.fixture(scope="module")
async def api(e2e_deployment: Deployment) -> AsyncIterator[ApiServer]:
    server = ApiServer(e2e_deployment)
    server.start()
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()


async def test_a_key_is_shown_once_works_for_its_owner_and_dies_when_revoked(
    bot: BotProcess, fake: FakeDiscord, api: ApiServer
) -> None:
    answer = await ephemeral_answer(await fake.slash("apikey", {"name": "my app"}, subcommand="create"))
    token, secret = TOKEN.search(answer), SECRET.search(answer)
    assert token and secret, answer
    key_id = re.search(r"id `([0-9a-f]{12})`", answer)
    assert key_id, answer

    listing = await ephemeral_answer(await fake.slash("apikey", None, subcommand="list"))
    assert key_id[1] in listing and "my app" in listing and token[0] not in listing
    choices = await fake.autocomplete("apikey", {"id": ""}, focused="id", subcommand="revoke")
    assert [c["value"] for c in choices] == [key_id[1]]
    refused = await ephemeral_answer(
        await fake.slash("apikey", {"id": key_id[1]}, user="bob", subcommand="revoke")
    )
    assert "no live API key" in refused  # not bob's

    # A project thread of alice's; the API sends a generation there, and the bot shows it.
    status, thread_id = await imagine(fake, {"prompt": "a harbour at noon --seed 1", "steps": 1})
    await finished(fake, status.id)
    known = {m.id for m in fake.bot_messages(thread_id)}
    async with httpx.AsyncClient(
        base_url=api.url, headers={"Authorization": f"Bearer {token[0]}"}, timeout=30
    ) as http:
        assert (await http.get("/v1/models")).status_code == 200
        sent = await http.post(
            "/v1/generations",
            json={"prompt": "the harbour at night --seed 2", "steps": 1, "discord_thread_id": str(thread_id)},
        )
        assert sent.status_code == 202, sent.text
        shown = await status_message(fake, thread_id, known)
        result = await finished(fake, shown.id)
        assert result.content.startswith("✅ Done"), result.content
        assert sent.json()["id"][:8] in result.attachments[0].filename

        revoked = await ephemeral_answer(await fake.slash("apikey", {"id": key_id[1]}, subcommand="revoke"))
        assert "Revoked API key" in revoked
        after = await http.get("/v1/models")
        assert after.status_code == 401 and after.headers["WWW-Authenticate"].startswith("Bearer")

    # The token was only ever in the one ephemeral answer: no other message, no log has it.
    for message in fake.messages.values():
        if token[0] in message.content:
            assert message.ephemeral, message.content
    assert sum(token[0] in m.content for m in fake.messages.values()) == 1
    assert token[0] not in bot.log() and token[0] not in api.log()
    fake.assert_clean()
