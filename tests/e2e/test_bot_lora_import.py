"""LoRAs made elsewhere through the real bot: /models import (file or message link), used by /imagine lora:.

The LoRA files are built here from the tiny models' own weights: a kohya-format SDXL LoRA (peft on
tiny-sdxl's UNet, exported with gpu_worker.kohya) and a Flux LoRA in BFL/ai-toolkit's layout
(``diffusion_model.double_blocks.*``) sized from tiny-flux's transformer.
"""

from __future__ import annotations

import io
import json
import pickle
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load, save

from studio.lora_import import read_base_shapes
from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import ephemeral_answer, finished, imagine
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment

SAFETENSORS = "application/octet-stream"


def sdxl_kohya_lora(tiny_sdxl: Path) -> bytes:
    """peft on tiny-sdxl's UNet (random, non-zero lora_B), saved by diffusers, converted to kohya."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from gpu_worker.kohya import read_metadata, to_kohya

    unet = UNet2DConditionModel.from_pretrained(tiny_sdxl / "unet")
    torch.manual_seed(7)
    targets = ["to_q", "to_k", "to_v", "to_out.0"]
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=targets))
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    with tempfile.TemporaryDirectory() as folder:
        layers = get_peft_model_state_dict(unet)
        StableDiffusionXLPipeline.save_lora_weights(
            folder, unet_lora_layers=layers, weight_name="l.safetensors"
        )
        kohya = to_kohya((Path(folder) / "l.safetensors").read_bytes())
    frequencies = {"10_zqsketch": {"zqsketch": 10, "pencil": 6}}
    return save(load(kohya), metadata=read_metadata(kohya) | {"ss_tag_frequency": json.dumps(frequencies)})


def flux_bfl_lora(tiny_flux: Path) -> bytes:
    """A Flux LoRA in the original model's naming, as BFL / ai-toolkit / ComfyUI write them."""
    shapes = read_base_shapes(str(tiny_flux))
    assert shapes is not None
    hidden = shapes["transformer_blocks.0.attn.to_q.weight"][0]
    mlp = shapes["single_transformer_blocks.0.proj_mlp.weight"][0]
    generator = torch.Generator().manual_seed(11)
    tensors: dict[str, torch.Tensor] = {}
    for module, out, inp in (
        ("double_blocks.0.img_attn.qkv", 3 * hidden, hidden),
        ("double_blocks.0.img_attn.proj", hidden, hidden),
        ("double_blocks.0.txt_attn.qkv", 3 * hidden, hidden),
        ("single_blocks.0.linear1", 3 * hidden + mlp, hidden),
        ("single_blocks.0.linear2", hidden, hidden + mlp),
    ):
        tensors[f"diffusion_model.{module}.lora_A.weight"] = torch.randn(4, inp, generator=generator) * 0.5
        tensors[f"diffusion_model.{module}.lora_B.weight"] = torch.randn(out, 4, generator=generator) * 0.5
    return save(tensors, metadata={"modelspec.trigger_phrase": "zqglow"})


def stored(deployment: Deployment) -> tuple[int, int]:
    """(LoRA rows, artifact files): what a refused import must leave unchanged."""
    settings = deployment.settings()
    with sqlite3.connect(settings.database_path) as db:
        rows = int(db.execute("SELECT COUNT(*) FROM loras").fetchone()[0])
    files = sum(1 for path in Path(settings.artifacts_dir).rglob("*") if path.is_file())
    return rows, files


async def import_answer(
    fake: FakeDiscord, options: dict[str, Any], file: tuple[bytes, str] | None = None, user: str = "alice"
) -> str:
    attachments = {"file": (file[0], file[1], SAFETENSORS)} if file else None
    record = await fake.slash("models", options, user=user, subcommand="import", attachments=attachments)
    return await ephemeral_answer(record)


async def grid(fake: FakeDiscord, options: dict[str, Any], user: str = "alice") -> np.ndarray:
    status, _ = await imagine(fake, options, user=user)
    result = await finished(fake, status.id)
    assert result.content.startswith("✅ Done"), result.content
    (png,) = result.attachments
    return np.asarray(Image.open(io.BytesIO(png.bytes)).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def lora_files(tiny_models: dict[str, Path]) -> dict[str, bytes]:
    return {
        "sdxl": sdxl_kohya_lora(tiny_models["tiny-sdxl"]),
        "flux": flux_bfl_lora(tiny_models["tiny-flux"]),
    }


async def test_kohya_sdxl_and_bfl_flux_loras_are_imported_and_change_the_images(
    bot: BotProcess, fake: FakeDiscord, lora_files: dict[str, bytes]
) -> None:
    # A kohya SDXL LoRA, attached; shared with the server; trigger words from its metadata.
    answer = await import_answer(
        fake,
        {"name": "zqsketch", "base_model": "tiny-sdxl", "visibility": "server"},
        (lora_files["sdxl"], "zqsketch.safetensors"),
    )
    assert answer.startswith("Imported `zqsketch`: a kohya LoRA for SDXL (rank 4,"), answer
    assert "trigger words `zqsketch`" in answer and "shared with this server" in answer
    listing = await ephemeral_answer(await fake.slash("models", None, user="bob", subcommand="list"))
    assert "`zqsketch` v1 — trigger `zqsketch` · tiny-sdxl" in listing
    recipe = {"prompt": "zqsketch a lighthouse --seed 21", "model": "tiny-sdxl"}
    plain = await grid(fake, recipe, user="bob")
    with_lora = await grid(fake, {**recipe, "lora": "zqsketch:1"}, user="bob")
    assert plain.shape == with_lora.shape and np.abs(plain - with_lora).max() > 10

    # A Flux LoRA in BFL's layout, from a link to alice's own message that mentions the bot.
    posted = await fake.send_user_message(
        f"<@{fake.application_id}> my flux lora",
        user="alice",
        attachments=[(lora_files["flux"], "glow.safetensors", SAFETENSORS)],
    )
    answer = await import_answer(
        fake, {"name": "zqglow", "base_model": "tiny-flux", "link": fake.jump_link(posted)}
    )
    assert answer.startswith(
        "Imported `zqglow`: a BFL/ai-toolkit LoRA for Flux (rank 4, 5 layers) on `tiny-flux`"
    ), answer
    assert "trigger words `zqglow`" in answer and "private" in answer
    recipe = {"prompt": "zqglow a lighthouse --seed 8", "model": "tiny-flux"}
    plain = await grid(fake, recipe)
    with_lora = await grid(fake, {**recipe, "lora": "zqglow:1"})
    assert np.abs(plain - with_lora).max() > 10
    private = await fake.slash("imagine", {**recipe, "lora": "zqglow"}, user="bob")
    assert "Unknown LoRA `zqglow`" in await ephemeral_answer(private)  # alice's own: bob can't see it

    # Someone else's message read through a link comes without its files (no Message Content).
    theirs = await fake.send_user_message(
        "a lora", user="bob", attachments=[(lora_files["flux"], "x.safetensors", SAFETENSORS)]
    )
    refused = await import_answer(
        fake, {"name": "stolen", "base_model": "tiny-flux", "link": fake.jump_link(theirs)}
    )
    assert "Discord doesn't show apps the files in other people's messages" in refused
    fake.assert_clean()


async def test_bad_lora_files_are_refused_in_one_sentence_and_nothing_is_stored(
    bot: BotProcess,
    fake: FakeDiscord,
    e2e_deployment: Deployment,
    lora_files: dict[str, bytes],
    tiny_models: dict[str, Path],
) -> None:
    before = stored(e2e_deployment)
    checkpoint = (tiny_models["tiny-sdxl"] / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    cases = {
        "made for Flux models, and the base model you chose is SDXL": (
            lora_files["flux"],
            "glow.safetensors",
        ),
        "holds no LoRA weights": (checkpoint, "model.safetensors"),
        "is truncated": (lora_files["sdxl"][:-64], "cut.safetensors"),
        "is a pickle": (pickle.dumps({"state_dict": {}}), "fox.safetensors"),
    }
    for expected, upload in cases.items():
        answer = await import_answer(fake, {"name": "badlora", "base_model": "tiny-sdxl"}, upload)
        assert expected in answer and answer.endswith(".") and "\n" not in answer, answer
    # A .ckpt is refused by its name, before it is downloaded.
    answer = await import_answer(
        fake, {"name": "badlora", "base_model": "tiny-sdxl"}, (b"\x80\x04K\x01.", "fox.ckpt")
    )
    assert "is a pickle" in answer
    assert stored(e2e_deployment) == before
    gone = await fake.slash("imagine", {"prompt": "x", "lora": "badlora"})
    assert "Unknown LoRA `badlora`" in await ephemeral_answer(gone)
    fake.assert_clean()
