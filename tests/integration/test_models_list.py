"""`atelier models list`: each model's family, source kind, hash and defaults, as the operator sees them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.integration.workers import Deployment


def test_models_list_shows_family_source_hash_defaults_and_switches(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    catalogue = tmp_path / "models.toml"
    catalogue.write_text(
        f'''default_model = "tiny-flux"

[models.tiny-sd15]
family = "sd15"
source = "{tiny_models["tiny-sd15"]}"
description = "tiny sd15"
steps = 4
guidance = 6.0
size = 64
clip_skip = 2
vae_tiling = true

[models.tiny-flux]
family = "flux"
source = "{tiny_models["tiny-flux"]}"
description = "tiny flux"
tags = ["demo"]
steps = 4
size = 64
max_tokens = 256

[models.faraway]
family = "sdxl"
source = "nobody-has/this-model-here"
description = "weights on the GPU hosts only"
cpu_offload = true
attention = "flash"
''',
        encoding="utf-8",
    )
    hash_cache = tmp_path / "hashes.json"
    deployment = Deployment(
        data_dir=tmp_path, models_file=catalogue, extra_env={"ATELIER_HASH_CACHE": str(hash_cache)}
    )
    result = deployment.cli("models", "list")
    assert result.returncode == 0, result.stderr

    def autov2(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:10]

    sd15 = autov2(tiny_models["tiny-sd15"] / "unet" / "diffusion_pytorch_model.safetensors")
    flux = autov2(tiny_models["tiny-flux"] / "transformer" / "diffusion_pytorch_model.safetensors")
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"tiny-sd15: SD 1.5 · folder · hash {sd15} · 4 steps, guidance 6, dpmpp_2m, 64 px · clip skip 2 "
        "· VAE tiling — tiny sd15",
        f"tiny-flux (default): Flux.1 · folder · hash {flux} · 4 steps, guidance 3.5, euler, 64 px "
        "· 256 prompt tokens — tiny flux [demo]",
        "faraway: SDXL · hub id · hash — · 30 steps, guidance 6, dpmpp_2m, 1024 px · CPU offload "
        "· attention flash — weights on the GPU hosts only",
    ]
    assert hash_cache.is_file()  # hashed once: the next listing reads no weights
    assert deployment.cli("models", "list").stdout.splitlines()[:3] == lines[:3]
