"""Every LoRA layout the import accepts loads on the tiny models, through the worker's own adapter path.

Each file is built from the tiny model's module shapes, imported (studio.lora_import), and the stored
weights are applied with LoadedModel.apply_adapters (load_lora_weights + set_adapters), as a job
would: the image must change, and with the adapter off it must be the base image again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save

from gpu_worker.pipelines import LoadedModel, load_model
from studio.catalogue import load_catalogue
from studio.jobs import AdapterRef
from studio.lora_import import import_lora, read_base_shapes

RANK = 4
SD_ATTENTION = "down_blocks.1.attentions.0.transformer_blocks.0"
UP_ATTENTION = "up_blocks.0.attentions.0.transformer_blocks.0"


def lora(
    modules: dict[str, tuple[int, int]], down: str, up: str, seed: int = 5, **extra: float
) -> dict[str, Any]:
    """Random non-zero down/up pairs named ``<module>{down}`` / ``<module>{up}``, with optional alphas."""
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for module, (out, inp) in modules.items():
        tensors[module + down] = torch.randn(RANK, inp, generator=generator) * 0.5
        tensors[module + up] = torch.randn(out, RANK, generator=generator) * 0.5
        if "alpha" in extra:
            tensors[module + ".alpha"] = torch.tensor(extra["alpha"])
    return tensors


def unet_modules(shapes: dict[str, tuple[int, ...]], sep: str, prefix: str) -> dict[str, tuple[int, int]]:
    found = {}
    for block in (SD_ATTENTION, UP_ATTENTION):
        for name in ("attn1.to_q", "attn2.to_k", "attn2.to_v", "attn1.to_out.0"):
            out, inp = shapes[f"{block}.{name}.weight"][:2]
            found[prefix + f"{block}.{name}".replace(".", sep)] = (out, inp)
    return found


def kohya_sd(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    return lora(unet_modules(shapes, "_", "lora_unet_"), ".lora_down.weight", ".lora_up.weight", alpha=2.0)


def diffusers_sd(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    return lora(unet_modules(shapes, ".", "unet."), ".lora_A.weight", ".lora_B.weight")


def peft_sd(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    return lora(unet_modules(shapes, ".", "base_model.model."), ".lora_A.weight", ".lora_B.weight")


def flux_original(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, int]]:
    hidden = shapes["transformer_blocks.0.attn.to_q.weight"][0]
    mlp = shapes["single_transformer_blocks.0.proj_mlp.weight"][0]
    return {
        "double_blocks.0.img_attn.qkv": (3 * hidden, hidden),
        "double_blocks.0.txt_mlp.0": shapes["transformer_blocks.0.ff_context.net.0.proj.weight"][:2],  # type: ignore[dict-item]
        "single_blocks.0.linear1": (3 * hidden + mlp, hidden),
        "final_layer.adaLN_modulation.1": shapes["norm_out.linear.weight"][:2],  # type: ignore[dict-item]
    }


def kohya_flux(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    modules = {"lora_unet_" + k.replace(".", "_"): v for k, v in flux_original(shapes).items()}
    modules["lora_te1_text_model_encoder_layers_0_self_attn_q_proj"] = (32, 32)  # kohya trains CLIP-L too
    return lora(modules, ".lora_down.weight", ".lora_up.weight", alpha=2.0)


def bfl_flux(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    modules = {"diffusion_model." + k: v for k, v in flux_original(shapes).items()}
    return lora(modules, ".lora_A.weight", ".lora_B.weight")


def xlabs_flux(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    hidden = shapes["transformer_blocks.0.attn.to_q.weight"][0]
    modules = {
        "double_blocks.0.processor.qkv_lora1": (3 * hidden, hidden),
        "double_blocks.0.processor.proj_lora2": (hidden, hidden),
        "single_blocks.0.processor.qkv_lora": (3 * hidden, hidden),
    }
    return lora(modules, ".down.weight", ".up.weight")


def diffusers_flux(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    modules = {f"transformer.{m}": shapes[f"{m}.weight"][:2] for m in ("transformer_blocks.0.attn.to_q",
               "single_transformer_blocks.0.proj_out", "transformer_blocks.0.ff.net.2")}  # fmt: skip
    return lora(modules, ".lora_A.weight", ".lora_B.weight")  # type: ignore[arg-type]


def peft_flux(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    return {k.replace("transformer.", "base_model.model.", 1): v for k, v in diffusers_flux(shapes).items()}


CASES: list[tuple[str, str, Callable[[dict[str, tuple[int, ...]]], dict[str, Any]]]] = [
    ("tiny-sd15", "kohya", kohya_sd),
    ("tiny-sd15", "diffusers", diffusers_sd),
    ("tiny-sdxl", "kohya", kohya_sd),
    ("tiny-sdxl", "peft", peft_sd),
    ("tiny-flux", "kohya", kohya_flux),
    ("tiny-flux", "bfl", bfl_flux),
    ("tiny-flux", "xlabs", xlabs_flux),
    ("tiny-flux", "diffusers", diffusers_flux),
    ("tiny-flux", "peft", peft_flux),
]
_LOADED: dict[str, LoadedModel] = {}


def loaded(tiny_catalogue: Path, model_id: str) -> LoadedModel:
    if model_id not in _LOADED:
        _LOADED[model_id] = load_model(
            load_catalogue(tiny_catalogue).get(model_id).ref(), "cpu", torch.float32
        )
    return _LOADED[model_id]


def render(model: LoadedModel) -> np.ndarray:
    out = model.text2img(
        "a lighthouse", num_inference_steps=2, height=64, width=64,
        generator=torch.Generator().manual_seed(3), output_type="np",
    )  # fmt: skip
    return np.asarray(out.images[0])


@pytest.mark.parametrize(("model_id", "layout", "build"), CASES, ids=[f"{m}-{f}" for m, f, _ in CASES])
def test_an_imported_layout_loads_and_changes_the_image(
    tiny_catalogue: Path, tmp_path: Path, model_id: str, layout: str, build: Any
) -> None:
    entry = load_catalogue(tiny_catalogue).get(model_id)
    shapes = read_base_shapes(entry.source)
    assert shapes is not None
    found = import_lora(save(build(shapes)), entry.family, base_shapes=shapes)
    assert (found.format, found.family) == (layout, entry.family)
    digest = hashlib.sha256(found.weights).hexdigest()
    (tmp_path / f"{digest}.safetensors").write_bytes(found.weights)
    model = loaded(tiny_catalogue, model_id)
    model.apply_adapters([], lambda sha: tmp_path / f"{sha}.safetensors", keep=0)
    base = render(model)
    model.apply_adapters(
        [AdapterRef(name=layout, sha=digest, weight=1.0)], lambda sha: tmp_path / f"{sha}.safetensors", keep=0
    )
    changed = render(model)
    model.apply_adapters([], lambda sha: tmp_path / f"{sha}.safetensors", keep=0)
    assert np.abs(changed - base).max() > 0.02, "the LoRA did not change the image"
    assert np.array_equal(render(model), base)  # off again: the base image exactly
