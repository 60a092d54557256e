"""/models list shows each base model as an operator needs it: family, source kind, hash, defaults."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer
from tests.fake_discord import FakeDiscord


async def test_models_list_shows_family_source_hash_and_defaults(
    bot: BotProcess, fake: FakeDiscord, tiny_models: dict[str, Path]
) -> None:
    listing = await ephemeral_answer(await fake.slash("models", None, user="bob", subcommand="list"))
    unet = tiny_models["tiny-sd15"] / "unet" / "diffusion_pytorch_model.safetensors"
    transformer = tiny_models["tiny-flux"] / "transformer" / "diffusion_pytorch_model.safetensors"
    sd15 = hashlib.sha256(unet.read_bytes()).hexdigest()[:10]
    flux = hashlib.sha256(transformer.read_bytes()).hexdigest()[:10]
    assert (
        f"• `tiny-sd15` — SD 1.5 · folder · hash `{sd15}` · 4 steps, guidance 7, dpmpp_2m, 64 px" in listing
    )
    assert f"• `tiny-flux` — Flux.1 · folder · hash `{flux}` · 4 steps, guidance 3.5, euler, 64 px" in listing
