"""Flux LoRA training on tiny-flux, in process: the flow loss falls, the adapter reloads exactly
(in a fresh pipeline and in a fresh process, through diffusers' FluxPipeline.load_lora_weights),
and the kohya export is the same adapter in the layout diffusers' kohya loader reads."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load, save

from gpu_worker.generate import run
from gpu_worker.kohya import read_metadata, to_kohya
from gpu_worker.kohya_flux import flux_to_kohya
from gpu_worker.pipelines import PipelineCache
from gpu_worker.train import WEIGHT_NAME, load_adapter, train_lora
from studio.recipe import Recipe
from tests.integration.test_training import CAPTIONS, Run, dataset, fresh, params, pixels, quiet, ref, train

ROOT = Path(__file__).resolve().parents[2]


def flux_recipe(**changes: Any) -> Recipe:
    values: dict[str, Any] = {
        "model": "tiny-flux",
        "family": "flux",
        "prompt": "a red sun",
        "seed": 11,
        "steps": 3,
        "guidance": 3.5,
        "sampler": "euler",
        "width": 64,
        "height": 64,
        "batch": 2,
    }
    return Recipe(**(values | changes))


@pytest.fixture(scope="module")
def flux(tiny_models: dict[str, Path]) -> Run:
    """40 steps on four images (rank 4, alpha 8: scale 2), a sample every 20 steps."""
    return train(ref(tiny_models, "flux"), params(sample_every=20), flux_recipe())


def test_the_flow_loss_falls_and_progress_is_reported(flux: Run) -> None:
    losses = flux.trained.losses
    assert [(step, total) for step, total, _ in flux.progress] == [(10, 40), (20, 40), (30, 40), (40, 40)]
    assert all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0], losses
    assert [step for step, _ in flux.samples] == [20] and flux.samples[0][1].size == (64, 64)
    weights = load(flux.trained.weights)
    assert weights and all(key.startswith("transformer.") for key in weights)
    trained = {key.removeprefix("transformer.").split(".lora_")[0] for key in weights}
    # Both block kinds learn: attention, feed-forward, and the single blocks' MLP and output.
    for module in (
        "transformer_blocks.0.attn.to_q",
        "transformer_blocks.0.attn.add_v_proj",
        "transformer_blocks.0.ff_context.net.2",
        "single_transformer_blocks.0.attn.to_k",
        "single_transformer_blocks.0.proj_mlp",
        "single_transformer_blocks.0.proj_out",
    ):
        assert module in trained, module
    assert "proj_out" not in trained and "norm_out.linear" not in trained
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}


def test_the_adapter_reloads_bit_identically_in_a_fresh_pipeline(
    flux: Run, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    trained = flux.trained
    assert len(trained.lora_images) == len(trained.base_images) == 2
    assert pixels(trained.lora_images) != pixels(trained.base_images)  # the adapter does something
    model = fresh(ref(tiny_models, "flux"))
    never = threading.Event()
    assert pixels(run(model, flux_recipe(), None, quiet, never).images) == pixels(trained.base_images)
    (tmp_path / WEIGHT_NAME).write_bytes(trained.weights)
    model.text2img.load_lora_weights(str(tmp_path), weight_name=WEIGHT_NAME, adapter_name="mine")
    assert pixels(run(model, flux_recipe(), None, quiet, never).images) == pixels(trained.lora_images)
    model.text2img.set_adapters(["mine"], [0.0])
    assert pixels(run(model, flux_recipe(), None, quiet, never).images) == pixels(trained.base_images)


_FRESH_PROCESS = """
import hashlib, sys, threading
import numpy as np
from diffusers import FluxPipeline
from gpu_worker.generate import run
from gpu_worker.pipelines import PipelineCache
from studio.jobs import ModelRef
from studio.recipe import Recipe
import torch
folder, lora, recipe = sys.argv[1:]
model, _ = PipelineCache("cpu", torch.float32).get(ModelRef(id="tiny-flux", family="flux", source=folder))
assert isinstance(model.text2img, FluxPipeline)
model.text2img.load_lora_weights(lora, weight_name="pytorch_lora_weights.safetensors", adapter_name="x")
images = run(model, Recipe.model_validate_json(recipe), None, lambda s, t: None, threading.Event()).images
print(hashlib.sha256(b"".join(np.asarray(i).tobytes() for i in images)).hexdigest())
"""


def test_the_adapter_reloads_bit_identically_in_a_fresh_process(
    flux: Run, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / WEIGHT_NAME).write_bytes(flux.trained.weights)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _FRESH_PROCESS,
            str(tiny_models["tiny-flux"]),
            str(tmp_path),
            flux_recipe().model_dump_json(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = hashlib.sha256(b"".join(pixels(flux.trained.lora_images))).hexdigest()
    assert done.stdout.strip().splitlines()[-1] == expected


def _deltas(tensors: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """diffusers module -> the weight change its adapter makes (B @ A * alpha / r)."""
    modules = {key.removeprefix("transformer.").split(".lora_")[0] for key in tensors}
    return {
        m: tensors[f"transformer.{m}.lora_B.weight"] @ tensors[f"transformer.{m}.lora_A.weight"] * scale
        for m in modules
    }


def test_the_kohya_export_is_the_same_adapter_in_kohyas_layout(
    flux: Run, tiny_models: dict[str, Path]
) -> None:
    kohya, weights = load(flux.trained.kohya), load(flux.trained.weights)
    assert flux.trained.kohya == to_kohya(flux.trained.weights)  # what the job sends is the conversion
    metadata = read_metadata(flux.trained.kohya)
    assert metadata["ss_network_module"] == "networks.lora_flux" and metadata["ss_network_dim"] == "4"
    assert metadata["ss_network_alpha"] == "8"
    modules = {key.split(".")[0] for key in kohya}
    assert all(
        name.startswith(("lora_unet_double_blocks_0_", "lora_unet_single_blocks_0_")) for name in modules
    )
    assert len(modules) == 10 and len(kohya) == 3 * len(modules)
    # Each kohya layer changes the fused weight exactly as the separate adapters change its parts.
    deltas = _deltas(weights, scale=8 / 4)
    fused = {
        "double_blocks_0_img_attn_qkv": ["attn.to_q", "attn.to_k", "attn.to_v"],
        "double_blocks_0_txt_attn_qkv": ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"],
        "double_blocks_0_img_mlp_0": ["ff.net.0.proj"],
        "double_blocks_0_txt_attn_proj": ["attn.to_add_out"],
        "single_blocks_0_linear1": ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"],
        "single_blocks_0_linear2": ["proj_out"],
    }
    for name, parts in fused.items():
        block = "transformer_blocks.0." if name.startswith("double") else "single_transformer_blocks.0."
        down, up = kohya[f"lora_unet_{name}.lora_down.weight"], kohya[f"lora_unet_{name}.lora_up.weight"]
        assert down.shape[0] == 4 * len(parts)
        delta = up @ down * (float(kohya[f"lora_unet_{name}.alpha"]) / down.shape[0])
        torch.testing.assert_close(
            delta, torch.cat([deltas[block + part] for part in parts]), rtol=0, atol=1e-7
        )

    # diffusers' own kohya loader reads the double blocks back into exactly the trained adapters
    # (scale 2 moved into the down matrices); its single-block split is sized for the real Flux
    # (3072 wide), which the next test covers.
    double = {key: value for key, value in kohya.items() if "_double_blocks_" in key}
    model = fresh(ref(tiny_models, "flux"))
    load_adapter(model.text2img, save(double), "kohya", weight_name="flux_kohya.safetensors")
    loaded = get_peft_model_state_dict(model.text2img.transformer, adapter_name="kohya")
    originals = {key.removeprefix("transformer."): value for key, value in weights.items()}
    assert set(loaded) == {key for key in originals if key.startswith("transformer_blocks.")}
    for key, value in loaded.items():
        expected = originals[key] * (2.0 if ".lora_A." in key else 1.0)
        assert torch.equal(value, expected), key
    images = run(model, flux_recipe(), None, quiet, threading.Event()).images
    assert pixels(images) != pixels(flux.trained.base_images)


def test_a_real_size_single_block_splits_back_through_diffusers_kohya_loader() -> None:
    """Flux.1's own widths (3072 hidden, 12288 MLP): diffusers' loader splits linear1 exactly."""
    torch.manual_seed(0)
    rank, hidden, mlp = 2, 3072, 12288
    outs = {
        "attn.to_q": hidden,
        "attn.to_k": hidden,
        "attn.to_v": hidden,
        "proj_mlp": mlp,
        "proj_out": hidden,
    }
    ins = {"proj_out": hidden + mlp}
    tensors = {}
    for module, out in outs.items():
        base = f"transformer.single_transformer_blocks.3.{module}"
        tensors[f"{base}.lora_A.weight"] = torch.randn(rank, ins.get(module, hidden))
        tensors[f"{base}.lora_B.weight"] = torch.randn(out, rank)
    kohya = flux_to_kohya(tensors, alpha=float(rank))  # scale 1: nothing is rescaled on load
    assert set(kohya) == {
        f"lora_unet_single_blocks_3_{layer}.{part}"
        for layer in ("linear1", "linear2")
        for part in ("lora_down.weight", "lora_up.weight", "alpha")
    }
    back = _convert_kohya_flux_lora_to_diffusers(dict(kohya))
    assert set(back) == set(tensors)
    for key, value in tensors.items():
        assert torch.equal(back[key], value), key


def test_flux_training_refuses_text_encoders_and_other_families(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="transformer only"):
        train_lora(
            fresh(ref(tiny_models, "flux")),
            params(steps=2, train_text_encoder=True),
            dataset(),
            CAPTIONS,
            flux_recipe(),
            lambda step, total, loss: None,
            lambda step, image: None,
            threading.Event(),
            "cpu",
        )
    with pytest.raises(ValueError, match=r"SD 1\.5, SDXL and Flux"):
        train_lora(
            fresh(ref(tiny_models, "sd3")),
            params(steps=2),
            dataset(),
            CAPTIONS,
            flux_recipe(model="tiny-sd3", family="sd3"),
            lambda step, total, loss: None,
            lambda step, image: None,
            threading.Event(),
            "cpu",
        )
    with pytest.raises(ValueError, match="lacks proj_mlp"):  # kohya fuses what this adapter keeps apart
        flux_to_kohya(
            {
                f"transformer.single_transformer_blocks.0.attn.to_{p}.lora_{ab}.weight": torch.zeros(2, 2)
                for p in "qkv"
                for ab in "AB"
            },
            None,
        )


def test_the_same_seed_gives_the_same_flux_weights(tiny_models: dict[str, Path]) -> None:
    # Batches of 2, two micro-batches per step: the accumulation path, short.
    how = params(steps=3, batch_size=2, gradient_accumulation=2, progress_every=2)
    sample = flux_recipe(batch=1, steps=2)
    first = train(ref(tiny_models, "flux"), how, sample).trained
    again = train(ref(tiny_models, "flux"), how, sample).trained
    assert first.weights == again.weights and first.kohya == again.kohya
    assert first.losses == again.losses and len(first.losses) == 2
    assert pixels(first.lora_images) == pixels(again.lora_images)


@pytest.mark.parametrize("mixed_precision", ["no", "bf16"])
def test_a_bf16_flux_trains_fp32_adapters(tiny_models: dict[str, Path], mixed_precision: str) -> None:
    """How a GPU worker trains Flux: the base model in bf16 (training_job), the LoRA in fp32."""
    model, _ = PipelineCache("cpu", torch.bfloat16).get(ref(tiny_models, "flux"))
    trained = train_lora(
        model,
        params(steps=3, mixed_precision=mixed_precision, progress_every=1),
        dataset(),
        CAPTIONS,
        flux_recipe(batch=1, steps=2),
        lambda step, total, loss: None,
        lambda step, image: None,
        threading.Event(),
        "cpu",
    )
    assert len(trained.losses) == 3 and all(np.isfinite(trained.losses))
    assert {tensor.dtype for tensor in load(trained.weights).values()} == {torch.float32}
    assert pixels(trained.lora_images) != pixels(trained.base_images)
