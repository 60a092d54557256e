"""`atelier apikey` mints a key without Discord, and the README's curl example works with it.

Real CLI subprocesses against the deployment's database, the real API process, real workers, and
the README's own curl lines (only the address is changed to the test server's).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.api.server import ApiServer
from tests.integration.workers import ROOT, Deployment

README_BASE = "http://127.0.0.1:8080"
DONE_TIMEOUT = 90.0
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the README example needs curl")


@pytest.fixture(scope="module")
def cli_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(data_dir=tmp_path_factory.mktemp("apikey-cli"), models_file=tiny_catalogue)
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def cli_api(cli_deployment: Deployment) -> AsyncIterator[ApiServer]:
    server = ApiServer(cli_deployment)
    server.start()
    try:
        await server.wait_ready()
        await cli_deployment.wait_ready()
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


def readme_curl_lines() -> list[str]:
    """The README's curl example, one command per entry (continuation lines joined)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(curl -s -H \"Authorization: Bearer \$ATELIER_KEY\".*?)```", text, re.S)
    assert block is not None, "the README lost its curl example"
    commands = block.group(1).replace("\\\n", " ").strip().splitlines()
    assert len(commands) == 3 and all(c.startswith("curl ") and README_BASE in c for c in commands), commands
    return commands


def curl(command: str, api: ApiServer, key: str, cwd: Path, **fill: str) -> str:
    command = command.replace(README_BASE, api.url)
    for name, value in fill.items():
        command = command.replace(f"<{name}>", value)
    done = subprocess.run(
        ["bash", "-c", command],
        env={"ATELIER_KEY": key, "PATH": "/usr/bin:/bin"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (command, done.stderr)
    return done.stdout


def minted_token(output: str) -> tuple[str, str]:
    token = re.search(r"^key:\s+(atl_[A-Za-z0-9_-]{43})$", output, re.M)
    key_id = re.search(r"\(id ([A-Za-z0-9]+)\)", output)
    assert token is not None and key_id is not None, output
    return token.group(1), key_id.group(1)


async def test_a_key_minted_by_the_cli_runs_the_readme_curl_example(
    cli_api: ApiServer, cli_deployment: Deployment, tmp_path: Path
) -> None:
    made = cli_deployment.cli("apikey", "create", "--user", "424242", "--server", "777", "--name", "shop")
    assert made.returncode == 0, made.stderr
    token, key_id = minted_token(made.stdout)
    assert "shown only this once" in made.stdout and "in server 777" in made.stdout

    start, poll, fetch = readme_curl_lines()
    started: dict[str, Any] = json.loads(curl(start, cli_api, token, tmp_path))
    assert started["status"] in ("queued", "running") and started["recipe"]["batch"] == 4, started
    deadline = time.monotonic() + DONE_TIMEOUT
    while True:
        state: dict[str, Any] = json.loads(curl(poll, cli_api, token, tmp_path, id=started["id"]))
        assert "status" in state, state
        if state["status"] in ("done", "failed", "cancelled") or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)  # as a person would: the default rate limit is 60 a minute
    assert state["status"] == "done", state
    assert len(state["images"]) == 4 and state["recipe"]["aspect"] == "3:2"
    curl(fetch, cli_api, token, tmp_path, id=started["id"])
    with Image.open(tmp_path / "lighthouse.png") as picture:
        assert picture.format == "PNG" and picture.width > picture.height  # 3:2

    # The key is that Discord user's, in that server, and the operator sees and revokes it.
    listed = cli_deployment.cli("apikey", "list", "--user", "424242")
    assert listed.returncode == 0 and key_id in listed.stdout, listed
    assert "discord:424242" in listed.stdout and "server 777" in listed.stdout and token not in listed.stdout
    assert key_id not in cli_deployment.cli("apikey", "list", "--user", "1").stdout
    assert key_id in cli_deployment.cli("apikey", "list").stdout
    revoked = cli_deployment.cli("apikey", "revoke", key_id)
    assert revoked.returncode == 0 and "Revoked" in revoked.stdout, revoked
    refused = curl(
        poll.replace("curl -s", "curl -s -o /dev/null -w %{http_code}"), cli_api, token, tmp_path, id="x"
    )
    assert refused == "401"
    assert key_id not in cli_deployment.cli("apikey", "list").stdout


def test_bad_arguments_are_one_clear_line(cli_deployment: Deployment) -> None:
    for args, words in (
        (("create", "--user", "alice"), "--user is a Discord id"),
        (("create", "--user", "12", "--server", "guild one"), "--server is a Discord id"),
        (("revoke", "nosuchkey"), "no live API key with id `nosuchkey`"),
        (("create", "--user", "12", "--name", "\x07bell"), "printable characters"),
    ):
        done = cli_deployment.cli("apikey", *args)
        assert done.returncode == 2, (args, done)
        assert done.stderr.startswith("error: ") and words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
