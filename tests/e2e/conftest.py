from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment


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
