from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess
from tests.fake_discord import FakeDiscord, GuildRecord
from tests.integration.workers import Deployment

SECOND_GUILD = "Second Guild"


@pytest.fixture
def second_guild(fake: FakeDiscord) -> GuildRecord:
    """The session's second guild: its ``id``, ``channel_id`` ("general"), members alice and carol."""
    return next(g for g in fake.guilds.values() if g.name == SECOND_GUILD)


@pytest.fixture(scope="session")
def e2e_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Real Redis, an inference, a post and a training worker on the tiny models, for the bot tests."""
    dep = Deployment(data_dir=tmp_path_factory.mktemp("e2e"), models_file=tiny_catalogue)
    dep.start_worker("inference")
    dep.start_worker("post")
    dep.start_worker("training")
    yield dep
    dep.stop()


@pytest.fixture(scope="session")
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    # A second server the bot is in (before the bot starts, so it syncs commands there too):
    # alice is in both, carol only there, bob and mod only in the default guild.
    await server.add_guild(SECOND_GUILD, members=["alice", "carol"])
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def bot(
    fake: FakeDiscord, e2e_deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[BotProcess]:
    """The real bot process (`python -m bot`), connected to the fake, with workers ready."""
    await e2e_deployment.wait_ready()
    process = BotProcess(fake, e2e_deployment, tmp_path_factory.mktemp("bot-logs"))
    process.start()
    try:
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
    except AssertionError:
        raise AssertionError("bot did not connect:\n" + process.log()) from None
    yield process
    process.stop()
