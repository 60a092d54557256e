"""A generation with a LoRA through Redis and a real worker: its PNGs carry the `Model hash` and
`Lora hashes` Civitai links resources by, and a third-party reader (sd-parsers) reads them back."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from PIL import Image
from sd_parsers import ParserManager

from studio import jobs
from studio.app import Studio
from studio.entities import Requester
from studio.model_hashes import addnet_sha256
from studio.store.connection import new_id

ALICE = Requester(id="cli:hashes-alice", name="alice")


def lora_file(unet_folder: Path) -> bytes:
    """A diffusers/peft LoRA on the tiny SD 1.5 UNet, with non-zero weights (it changes the image)."""
    unet = UNet2DConditionModel.from_pretrained(unet_folder)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    torch.manual_seed(5)
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    with tempfile.TemporaryDirectory() as folder:
        StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(unet))
        return (Path(folder) / "pytorch_lora_weights.safetensors").read_bytes()


async def register(studio: Studio, name: str, weights: bytes) -> None:
    """Record a finished LoRA exactly as the Forge does when a training run ends."""
    lora_id = new_id()
    await studio.store.ensure_user(ALICE.id, ALICE.name)
    params = jobs.TrainingParams(steps=1, rank=4, alpha=4, learning_rate=1e-4, resolution=64, seed=1)
    await studio.store.loras.add(
        lora_id,
        owner_id=ALICE.id,
        project_id=None,
        server=None,
        name=name,
        version=1,
        trigger=name,
        base_model="tiny-sd15",
        family="sd15",
        visibility="private",
        params_json=params.model_dump_json(),
        image_count=0,
        channel_id=None,
        dataset_json=json.dumps({"images": [], "captions": []}),
    )
    digest = await asyncio.to_thread(studio.artifacts.put, weights, ".safetensors")
    artifacts = {"weights": digest, "kohya": None, "sample": None, "comparison": None}
    assert await studio.store.loras.finish(lora_id, artifacts, len(weights), [], 0.0, 1)


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute:UserWarning")
async def test_pngs_carry_the_model_and_lora_hashes_sd_parsers_reads(
    studio: Studio, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    unet_weights = tiny_models["tiny-sd15"] / "unet" / "diffusion_pytorch_model.safetensors"
    weights = await asyncio.to_thread(lora_file, tiny_models["tiny-sd15"] / "unet")
    await register(studio, "inkwash", weights)
    (tmp_path / "inkwash.safetensors").write_bytes(weights)
    lora_hash = addnet_sha256(tmp_path / "inkwash.safetensors")[:12]
    model_hash = hashlib.sha256(unet_weights.read_bytes()).hexdigest()[:10]

    with_lora = await studio.generations.imagine(ALICE, "a harbour --seed 11 --batch 2 --lora inkwash:0.8")
    without = await studio.generations.imagine(ALICE, "a harbour --seed 11 --batch 2")
    done = await asyncio.wait_for(studio.results.follow(with_lora.id), 120)
    plain = await asyncio.wait_for(studio.results.follow(without.id), 120)
    pngs = [await studio.artifacts.read(image.artifact) for image in done.images]
    plain_png = await studio.artifacts.read(plain.images[0].artifact)
    assert not np.array_equal(
        np.asarray(Image.open(io.BytesIO(pngs[0]))), np.asarray(Image.open(io.BytesIO(plain_png)))
    )  # the LoRA was applied

    parser = ParserManager()
    for index, png in enumerate(pngs):
        text = Image.open(io.BytesIO(png)).text["parameters"]
        assert f"Model hash: {model_hash}, Model: tiny-sd15" in text
        assert f'Lora hashes: "inkwash: {lora_hash}"' in text  # A1111's own form
        path = tmp_path / f"{index}.png"
        path.write_bytes(png)
        info = parser.parse(path)
        assert info is not None
        assert [(m.name, m.hash) for m in info.models] == [("tiny-sd15", model_hash)]
        assert info.metadata["Hashes"] == {"model": model_hash, "lora:inkwash": lora_hash}
        assert int(info.samplers[0].parameters["seed"]) == 11 + index

    # Without a LoRA: the model hash alone.
    path = tmp_path / "plain.png"
    path.write_bytes(plain_png)
    info = parser.parse(path)
    assert info is not None and [m.hash for m in info.models] == [model_hash]
    assert info.metadata["Hashes"] == {"model": model_hash}
    assert "Lora hashes" not in Image.open(io.BytesIO(plain_png)).text["parameters"]
