"""`./dev demo` as a new user runs it: from the repository root, with and without a Redis.

The script reuses the existing .venv (its stamp says the install is current), builds the tiny
models, finds or starts a Redis, starts the workers and writes four PNGs and a grid. Everything
it writes goes to a temporary folder, and everything it starts must be gone when it exits.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.integration.workers import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "a lighthouse at dusk --ar 3:2 --seed 42 --batch 4"
TILE = (96, 64)  # 3:2 on the tiny model's 64 px short side
GRID = (2 * TILE[0] + 2, 2 * TILE[1] + 2)  # 2x2 tiles, 2 px gaps
# Only the demo (or a person's own `atelier` runs) writes here; the test must leave them as they were.
REPO_OUTPUTS = (ROOT / "out", ROOT / "data")

pytestmark = pytest.mark.timeout(600)  # a stale .venv stamp makes ./dev reinstall first


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listing(folders: tuple[Path, ...]) -> set[tuple[str, int]]:
    return {
        (str(p), p.stat().st_mtime_ns) for folder in folders if folder.exists() for p in folder.rglob("*")
    }


def processes_in_session(sid: int) -> list[str]:
    """Live processes (zombies aside) of session ``sid``, as 'pid: command line'."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != sid:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
        if state != "Z":
            found.append(f"{entry.name}: {command}")
    return found


def redis_servers_on(port: int) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
        if "redis-server" in command and f":{port}" in command:
            found.append(command)
    return found


def run_demo(tmp_path: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(
        ATELIER_REDIS_URL=redis_url,
        ATELIER_QUEUE_PREFIX=f"demo{uuid.uuid4().hex[:10]}",
        ATELIER_DATA_DIR=str(tmp_path / "data"),
        ATELIER_CONFIG=str(tmp_path / "absent.toml"),  # a developer's config/atelier.toml stays out
    )
    # Its own session, so every process it starts (but a daemonised Redis) can be found afterwards.
    process = subprocess.Popen(
        [str(ROOT / "dev"), "demo", PROMPT, "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=540)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # ./dev stops its Redis and workers on SIGTERM
        stdout, stderr = process.communicate(timeout=30)
        raise AssertionError(f"./dev demo did not finish:\n{stdout}\n{stderr}") from None
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    left = processes_in_session(process.pid)
    assert not left, f"./dev demo left processes running: {left}\n{stderr}"
    return result


def check_outputs(result: subprocess.CompletedProcess[str], out: Path) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "no training worker" not in result.stderr  # the demo needs no training worker
    printed = [Path(line) for line in result.stdout.splitlines() if line.endswith(".png")]
    assert sorted(printed) == sorted(out.iterdir()), (printed, list(out.iterdir()))
    images = sorted(p for p in printed if not p.name.endswith("-grid.png"))
    (grid_path,) = [p for p in printed if p.name.endswith("-grid.png")]
    assert [re.sub(r"^[0-9a-f]{8}-", "", p.name) for p in images] == [
        f"{n}-seed{41 + n}.png" for n in range(1, 5)
    ]
    tiles = []
    for n, path in enumerate(images):
        image = Image.open(path)
        assert image.format == "PNG" and image.size == TILE, (path, image.size)
        assert json.loads(image.info["atelier"])["seed"] == 42 + n  # the recipe travels in the file
        tiles.append(image.convert("RGB"))
    grid = Image.open(grid_path)
    assert grid.format == "PNG" and grid.size == GRID
    grid = grid.convert("RGB")
    for n, tile in enumerate(tiles):  # each tile is its image (the lower half: labels sit on top)
        x, y = (n % 2) * (TILE[0] + 2), (n // 2) * (TILE[1] + 2)
        half = (0, TILE[1] // 2, TILE[0], TILE[1])
        region = grid.crop((x + half[0], y + half[1], x + half[2], y + half[3]))
        assert region.tobytes() == tile.crop(half).tobytes(), f"tile {n + 1} of the grid"


@pytest.fixture
def repo_untouched() -> Iterator[None]:
    before = listing(REPO_OUTPUTS)
    yield
    assert listing(REPO_OUTPUTS) == before, "the demo wrote into the repository"


def test_demo_with_a_redis_that_answers(tmp_path: Path, repo_untouched: None) -> None:
    result = run_demo(tmp_path, TEST_REDIS_URL)
    check_outputs(result, tmp_path / "out")
    assert "started redis-server" not in result.stderr  # the running one was used


def test_demo_starts_and_stops_its_own_redis_when_none_answers(tmp_path: Path, repo_untouched: None) -> None:
    port = free_port()  # nothing listens here
    result = run_demo(tmp_path, f"redis://127.0.0.1:{port}/0")
    check_outputs(result, tmp_path / "out")
    started = re.search(r"started redis-server on port (\d+)", result.stderr)
    assert started, result.stderr
    own = int(started.group(1))
    assert not redis_servers_on(own), "./dev left its redis-server running"
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", own))
