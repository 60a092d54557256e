"""The bot's health port: /metrics counts Discord's 429s and the generations it recorded; its
JSON log lines carry the command's guild and user, never the token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import finished, imagine
from tests.fake_discord import FakeDiscord
from tests.integration.own_redis import free_port
from tests.integration.test_metrics_health import until_status
from tests.integration.workers import Deployment


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


@pytest.fixture
async def observed(
    e2e_deployment: Deployment, tmp_path: Path
) -> AsyncIterator[tuple[FakeDiscord, BotProcess, int]]:
    """Its own Discord and bot process, with a health port and JSON logs, on the session's workers."""
    fake = FakeDiscord()
    await fake.start()
    await e2e_deployment.wait_ready()
    own = Deployment(
        data_dir=tmp_path / "studio", models_file=e2e_deployment.models_file, prefix=e2e_deployment.prefix
    )
    own.data_dir.mkdir()
    port = free_port()
    bot = BotProcess(
        fake, own, tmp_path, extra_env={"ATELIER_HEALTH_PORT": str(port), "ATELIER_LOG_FORMAT": "json"}
    )
    bot.start()
    try:
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        yield fake, bot, port
    finally:
        bot.stop()
        await fake.stop()


async def test_the_bots_metrics_count_429s_and_generations(
    observed: tuple[FakeDiscord, BotProcess, int],
) -> None:
    fake, bot, port = observed
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        await until_status(client, "/readyz", 200)
        assert (await client.get("/healthz")).status_code == 200
        before = (await client.get("/metrics")).text
        assert sample(before, "atelier_discord_rate_limited_total", outcome="retried") == 0

        threads = fake.inject_rate_limit(
            "POST", r"/channels/\d+(/messages/\d+)?/threads", count=1, retry_after=0.2
        )
        fake.inject_rate_limit("PATCH", r"/channels/\d+/messages/\d+", count=2, retry_after=0.2)
        status, _ = await imagine(fake, {"prompt": "a patient heron", "steps": 4})
        result = await finished(fake, status.id)
        assert result.content.startswith("✅")

        after = (await client.get("/metrics")).text
        assert threads.consumed == 1
        seen = sum(1 for request in fake.requests if request.status == 429)  # what Discord answered
        assert sample(after, "atelier_discord_rate_limited_total", outcome="retried") == seen
        assert sample(after, "atelier_generations_finished_total", status="done") == 1
        assert sample(after, "atelier_generation_seconds_count") == 1
        assert "atelier_queue_depth" in after
    fake.assert_clean()

    lines = [line for line in bot.log().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    limited = [e for e in entries if e["message"].startswith("We are being rate limited")]
    assert len(limited) == seen
    command = next(i for i in fake.interactions.values() if i.name == "imagine")
    # The project thread is opened while the command runs: that line knows its guild and user.
    tagged = [e for e in limited if "/threads" in e["message"]]
    assert tagged and all(
        (e.get("guild_id"), e.get("user_id")) == (str(fake.guild_id), str(command.user_id)) for e in tagged
    ), tagged
    assert not any(fake.token in line for line in bot.log().splitlines())
