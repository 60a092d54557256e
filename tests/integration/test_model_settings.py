"""Per-model settings on a worker, on the tiny models and the CPU: VAE override (folder and single
file), VAE tiling, attention backend, CPU offload, CLIP skip; all through the real loading code."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from gpu_worker.generate import run
from gpu_worker.pipelines import LoadedModel, ModelLoadError, load_model
from gpu_worker.prompting import prompt_arguments
from studio.jobs import ModelRef
from studio.recipe import Recipe

NEVER = threading.Event()


def sd15(tiny_models: dict[str, Path], **settings: object) -> LoadedModel:
    ref = ModelRef(id="tiny-sd15", family="sd15", source=str(tiny_models["tiny-sd15"]), **settings)  # type: ignore[arg-type]
    return load_model(ref, "cpu", torch.float32)


def pixels(model: LoadedModel, size: int = 64, **changes: object) -> np.ndarray:
    family = model.ref.family
    recipe = Recipe(
        model=model.ref.id,
        family=family,
        prompt="a lighthouse at dusk",
        seed=7,
        steps=2,
        guidance=5.0,
        width=size,
        height=size,
        sampler="euler" if family in ("flux", "sd3") else "dpmpp_2m",
    ).model_copy(update=changes)
    image = run(model, recipe, None, lambda step, total: None, NEVER).images[0]
    assert image.size == (size, size)
    return np.asarray(image)


@pytest.fixture(scope="module")
def base(tiny_models: dict[str, Path]) -> np.ndarray:
    return pixels(sd15(tiny_models))


@pytest.fixture(scope="module")
def other_vae(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VAE shaped like the tiny model's, with other random weights, as a diffusers folder."""
    config = AutoencoderKL.load_config(tiny_models["tiny-sd15"] / "vae")
    torch.manual_seed(1234)
    folder = tmp_path_factory.mktemp("vae") / "other-vae"
    AutoencoderKL.from_config(config).save_pretrained(folder)
    return folder


def test_a_vae_override_from_a_folder_or_a_single_file_replaces_the_model_s_own(
    tiny_models: dict[str, Path], base: np.ndarray, other_vae: Path
) -> None:
    # The model's own VAE as an override: the same pixels.
    own = sd15(tiny_models, vae=str(tiny_models["tiny-sd15"] / "vae"))
    assert np.array_equal(pixels(own), base)
    # Another VAE: other pixels, the same from its folder as from its one file.
    from_folder = sd15(tiny_models, vae=str(other_vae))
    assert from_folder.text2img.vae.config.block_out_channels == own.text2img.vae.config.block_out_channels
    decoded = pixels(from_folder)
    assert not np.array_equal(decoded, base)
    single_file = other_vae / "diffusion_pytorch_model.safetensors"
    assert np.array_equal(pixels(sd15(tiny_models, vae=str(single_file))), decoded)


def test_a_vae_override_that_is_not_there_or_not_a_vae_is_one_sentence(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ModelLoadError, match=r"neither a diffusers VAE folder nor a \.safetensors file"):
        sd15(tiny_models, vae=str(tmp_path / "missing.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(ModelLoadError, match=r"the VAE override .* could not be loaded"):
        sd15(tiny_models, vae=str(junk))
    with pytest.raises(ModelLoadError, match=r"nobody/vae is not in this machine's Hugging Face cache"):
        sd15(tiny_models, vae="nobody/vae")


def test_vae_tiling_decodes_a_large_image_in_tiles(tiny_models: dict[str, Path]) -> None:
    # The tiny VAE's tiles are 64 px: a 128 px image is decoded as four blended tiles.
    plain = pixels(sd15(tiny_models), 128)
    tiled_model = sd15(tiny_models, vae_tiling=True)
    assert tiled_model.text2img.vae.use_tiling
    tiled = pixels(tiled_model, 128)
    assert tiled.shape == plain.shape and not np.array_equal(tiled, plain)


def test_the_attention_backend_is_set_on_the_denoiser_and_a_bad_one_is_a_sentence(
    tiny_models: dict[str, Path],
) -> None:
    flux = ModelRef(id="tiny-flux", family="flux", source=str(tiny_models["tiny-flux"]))
    default = pixels(load_model(flux, "cpu", torch.float32))
    native = load_model(flux.model_copy(update={"attention": "native"}), "cpu", torch.float32)
    processors = [m.processor for m in native.text2img.transformer.modules() if hasattr(m, "processor")]
    assert processors and all(p._attention_backend.value == "native" for p in processors)
    assert np.array_equal(pixels(native), default)  # native is what diffusers uses anyway
    with pytest.raises(ModelLoadError, match="attention backend `warp-drive` cannot be used"):
        load_model(flux.model_copy(update={"attention": "warp-drive"}), "cpu", torch.float32)


def test_cpu_offload_is_a_gpu_switch_and_a_cpu_worker_says_so(
    tiny_models: dict[str, Path], base: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gpu_worker.model_settings"):
        model = sd15(tiny_models, cpu_offload=True)
    assert "cpu_offload only applies on GPU workers" in caplog.text
    assert np.array_equal(pixels(model), base)


def test_clip_skip_2_uses_clip_s_penultimate_layer(tiny_models: dict[str, Path], base: np.ndarray) -> None:
    assert np.array_equal(pixels(sd15(tiny_models, clip_skip=1)), base)  # A1111's 1: no skip
    skipping = sd15(tiny_models, clip_skip=2)
    skipped = pixels(skipping, negative_prompt="fog")
    assert not np.array_equal(skipped, pixels(sd15(tiny_models), negative_prompt="fog"))
    # Prompt and negative both come from the penultimate layer (as in A1111), plain or weighted.
    weighted = pixels(skipping, prompt="(a lighthouse at dusk:1.0)", negative_prompt="fog")
    assert np.array_equal(weighted, skipped)
    pipe = skipping.text2img
    common = {"seed": 1, "steps": 1, "guidance": 5.0, "width": 64, "height": 64}
    recipe = Recipe(model="m", family="sd15", prompt="x", negative_prompt="fog", **common)  # type: ignore[arg-type]
    negative = prompt_arguments(skipping, recipe)["negative_prompt_embeds"]
    ids = pipe.tokenizer("fog", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        assert torch.allclose(negative, pipe.text_encoder.final_layer_norm(hidden), atol=1e-5)
    xl = ModelRef(id="tiny-sdxl", family="sdxl", source=str(tiny_models["tiny-sdxl"]))
    skipped = xl.model_copy(update={"clip_skip": 2})
    xl_base = pixels(load_model(xl, "cpu", torch.float32))
    assert not np.array_equal(pixels(load_model(skipped, "cpu", torch.float32)), xl_base)
