"""`atelier models import-lora`: the operator imports a LoRA for a Discord user; refusals in a sentence."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.e2e.test_bot_lora_import import flux_bfl_lora
from tests.integration.workers import Deployment


def test_the_operator_imports_a_flux_lora_for_a_discord_user(
    idle: Deployment, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "glow.safetensors"
    path.write_bytes(flux_bfl_lora(tiny_models["tiny-flux"]))
    common = ("models", "import-lora", str(path), "--name", "glow", "--owner", "4242")

    refused = idle.cli(*common, "--model", "tiny-sdxl")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: That LoRA was made for Flux models, and the base model you chose is SDXL: choose one of "
        "the Flux base models."
    )
    done = idle.cli(*common, "--model", "tiny-flux", "--share", "777", "--trigger", "glowing")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "glow v1: BFL/ai-toolkit LoRA for flux on tiny-flux, rank 4, 5 layers, trigger glowing, "
        "shared with server 777, owner discord:4242"
    )
    with sqlite3.connect(idle.settings().database_path) as db:
        rows = db.execute(
            "SELECT owner_id, server, visibility, family, status, weights, kohya FROM loras"
        ).fetchall()
    ((owner, server, visibility, family, status, weights, kohya),) = rows
    assert (owner, server, visibility, family, status) == ("discord:4242", "777", "server", "flux", "done")
    artifacts = {p.stem for p in Path(idle.settings().artifacts_dir).rglob("*.safetensors")}
    assert {weights, kohya} <= artifacts  # the rewritten file the worker loads, and the original
    again = idle.cli(*common, "--model", "tiny-flux")
    assert again.returncode == 1 and "glow" in again.stderr
    listed = idle.cli("models", "list")
    assert "glow v1: LoRA on tiny-flux, trigger glowing, server, by discord:4242" in listed.stdout
