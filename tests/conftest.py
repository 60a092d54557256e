"""Shared fixtures. Nothing here reaches the internet: the models are tiny ones built locally."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import fcntl
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parent.parent
# A headless Chromium (chromium_path, browser, context, page) for every folder that drives one.
pytest_plugins = ["tests.browser.fixtures"]
# Keyed by the builders' source (gpu_worker/tiny.py and any gpu_worker/tiny_*.py it calls), so a
# change to the tiny models rebuilds them.
_BUILDERS = sorted((ROOT / "gpu_worker").glob("tiny*.py"))
TINY_CACHE = (
    ROOT
    / ".cache"
    / f"tiny-models-{hashlib.sha256(b''.join(p.read_bytes() for p in _BUILDERS)).hexdigest()[:12]}"
)


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Path | str]:
    """What a store opens, once on each database: a SQLite file, then a fresh Postgres database."""
    if request.param == "sqlite":
        yield tmp_path / "a.db"
        return
    from tests.postgres import fresh_database

    async with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    """Tiny random SD 1.5/SDXL/Flux/SD 3.5 pipelines on disk, built once and reused between runs."""
    from gpu_worker.tiny import make_tiny

    TINY_CACHE.mkdir(parents=True, exist_ok=True)
    with (TINY_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return make_tiny(TINY_CACHE)


@pytest.fixture(scope="session")
def tiny_catalogue(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config")
    path = folder / "models.toml"
    path.write_text(
        f'''default_model = "tiny-sd15"

[models.tiny-sd15]
family = "sd15"
source = "{tiny_models["tiny-sd15"]}"
description = "tiny sd15"
steps = 4
size = 64

[models.tiny-sdxl]
family = "sdxl"
source = "{tiny_models["tiny-sdxl"]}"
description = "tiny sdxl"
steps = 4
size = 64

[models.tiny-flux]
family = "flux"
source = "{tiny_models["tiny-flux"]}"
description = "tiny flux"
steps = 4
guidance = 3.5
size = 64

[models.tiny-sd3]
family = "sd3"
source = "{tiny_models["tiny-sd3"]}"
description = "tiny sd3"
steps = 4
size = 64

[describe]
source = "{tiny_models["tiny-describe"]}"

[ip_adapter.sd15]
image_encoder = "{tiny_models["tiny-ip-adapter"] / "image_encoder"}"
style = "{tiny_models["tiny-ip-adapter"] / "sd15" / "style.safetensors"}"
character = "{tiny_models["tiny-ip-adapter"] / "sd15" / "character.safetensors"}"

[ip_adapter.sdxl]
image_encoder = "{tiny_models["tiny-ip-adapter"] / "image_encoder"}"
style = "{tiny_models["tiny-ip-adapter"] / "sdxl" / "style.safetensors"}"

[ip_adapter.flux]
image_encoder = "{tiny_models["tiny-ip-adapter"] / "image_encoder"}"
style = "{tiny_models["tiny-ip-adapter"] / "flux" / "style.safetensors"}"

[controlnets.sd15.canny]
source = "{tiny_models["tiny-sd15-canny"]}"

[controlnets.sdxl.canny]
source = "{tiny_models["tiny-sdxl-canny"]}"

[controlnets.sd15.depth]
source = "{tiny_models["tiny-sd15-depth"]}"
annotator = "{tiny_models["tiny-depth"]}"

[controlnets.sd15.pose]
source = "{tiny_models["tiny-sd15-pose"]}"
annotator = "{tiny_models["tiny-pose"]}"
''',
        encoding="utf-8",
    )
    return path
