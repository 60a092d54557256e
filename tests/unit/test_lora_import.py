"""LoRA files from elsewhere: layouts and families recognised from names and shapes, triggers, refusals."""

from __future__ import annotations

import json
import pickle
import struct
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load, save

from studio.errors import LoraRejected
from studio.lora_import import import_lora, read_safetensors, trigger_words

RANK = 4
# Module widths of the tiny models (gpu_worker/tiny.py): the UNets are shaped alike, except the
# text width their cross-attention reads (SD 1.5: 32, SDXL: 64).
SD_BLOCK = "down_blocks.1.attentions.0.transformer_blocks.0"
SD15_SHAPES = {f"{SD_BLOCK}.attn2.to_k.weight": (64, 32), f"{SD_BLOCK}.attn1.to_q.weight": (64, 64)}
SDXL_SHAPES = {f"{SD_BLOCK}.attn2.to_k.weight": (64, 64), f"{SD_BLOCK}.attn1.to_q.weight": (64, 64)}


def pair(down: str, up: str, out: int, inp: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        down: rng.standard_normal((RANK, inp)).astype(np.float32),
        up: rng.standard_normal((out, RANK)).astype(np.float32),
    }


def kohya(module: str, out: int, inp: int, alpha: float | None = None) -> dict[str, np.ndarray]:
    found = pair(f"{module}.lora_down.weight", f"{module}.lora_up.weight", out, inp)
    if alpha is not None:
        found[f"{module}.alpha"] = np.array(alpha, dtype=np.float32)
    return found


def diffusers(module: str, out: int, inp: int) -> dict[str, np.ndarray]:
    return pair(f"{module}.lora_A.weight", f"{module}.lora_B.weight", out, inp)


def file(tensors: dict[str, np.ndarray], **metadata: str) -> bytes:
    return save(tensors, metadata=metadata or None)


def one_sentence(error: pytest.ExceptionInfo[LoraRejected]) -> str:
    text = str(error.value)
    assert text.endswith(".") and "\n" not in text and ". " not in text.replace("e.g. ", ""), text
    return text


# Layouts and families


def test_kohya_sd15_and_sdxl_are_told_apart_by_their_names() -> None:
    sd15 = kohya("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320, 8.0)
    assert import_lora(file(sd15), "sd15").family == "sd15"
    sgm = kohya("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640)
    found = import_lora(file(sgm), "sdxl")
    assert (found.format, found.family, found.original_kohya) == ("kohya", "sdxl", True)
    te2 = kohya("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280)
    assert import_lora(file(te2), "sdxl").family == "sdxl"


def test_the_real_cross_attention_width_tells_sd15_from_sdxl() -> None:
    name = f"unet.{SD_BLOCK}.attn2.to_k"
    assert import_lora(file(diffusers(name, 320, 768)), "sd15").family == "sd15"
    with pytest.raises(LoraRejected) as refused:
        import_lora(file(diffusers(name, 640, 2048)), "sd15")
    assert "made for SDXL models" in one_sentence(refused)


def test_tiny_models_named_alike_are_told_apart_by_the_base_models_shapes() -> None:
    lora = file(kohya(f"lora_unet_{SD_BLOCK.replace('.', '_')}_attn2_to_k", 64, 64))
    found = import_lora(lora, "sdxl", base_shapes=SDXL_SHAPES)
    assert (found.format, found.family, found.rank, found.modules) == ("kohya", "sdxl", RANK, 1)
    with pytest.raises(LoraRejected) as refused:
        import_lora(lora, "sd15", base_shapes=SD15_SHAPES)
    assert "made for SDXL models" in one_sentence(refused)


def test_a_peft_file_is_renamed_for_diffusers() -> None:
    lora = diffusers(f"base_model.model.{SD_BLOCK}.attn2.to_k", 64, 64)
    found = import_lora(file(lora), "sdxl", base_shapes=SDXL_SHAPES)
    assert found.format == "peft" and not found.original_kohya
    renamed = load(found.weights)
    assert set(renamed) == {
        f"unet.{SD_BLOCK}.attn2.to_k.lora_A.weight",
        f"unet.{SD_BLOCK}.attn2.to_k.lora_B.weight",
    }
    assert np.array_equal(
        renamed[f"unet.{SD_BLOCK}.attn2.to_k.lora_B.weight"],
        next(v for k, v in lora.items() if "lora_B" in k),
    )


def test_a_diffusers_flux_file_is_kept_as_it_is() -> None:
    data = file(diffusers("transformer.single_transformer_blocks.0.attn.to_q", 32, 32))
    found = import_lora(data, "flux")
    assert (found.format, found.family, found.weights) == ("diffusers", "flux", data)


def flux_modules(make: Any, prefix: str) -> dict[str, np.ndarray]:
    """A Flux LoRA in the original model's naming, on the tiny Flux (hidden 32, MLP 128)."""
    return (
        make(f"{prefix}double_blocks{{s}}0{{s}}img_attn{{s}}qkv", 96, 32)
        | make(f"{prefix}single_blocks{{s}}0{{s}}linear1", 3 * 32 + 128, 32)
        | make(f"{prefix}final_layer{{s}}adaLN_modulation{{s}}1", 64, 32)
    )


@pytest.mark.parametrize("layout", ["bfl", "kohya", "xlabs"])
def test_flux_files_in_other_tools_layouts_become_diffusers_ones(layout: str) -> None:
    if layout == "bfl":
        source = flux_modules(lambda m, o, i: diffusers(m.format(s="."), o, i), "diffusion_model.")
    elif layout == "kohya":
        source = flux_modules(lambda m, o, i: kohya(m.format(s="_"), o, i, alpha=2.0), "lora_unet_")
    else:
        source = pair(
            "double_blocks.0.processor.qkv_lora1.down.weight",
            "double_blocks.0.processor.qkv_lora1.up.weight",
            96,
            32,
        )
    found = import_lora(file(source), "flux")
    assert (found.format, found.family, found.original_kohya) == (layout, "flux", True)
    out = read_safetensors(found.weights)
    tensors = load(found.weights)
    ups = [v for k, v in source.items() if "qkv" in k and ("lora_B" in k or "up" in k)]
    for index, part in enumerate(("to_q", "to_k", "to_v")):  # the fused q/k/v split by rows
        key = f"transformer.transformer_blocks.0.attn.{part}"
        assert np.array_equal(tensors[f"{key}.lora_B.weight"], ups[0][32 * index : 32 * (index + 1)])
        assert tensors[f"{key}.lora_A.weight"].shape == (RANK, 32)
    if layout != "xlabs":
        assert tensors["transformer.single_transformer_blocks.0.proj_mlp.lora_B.weight"].shape == (128, RANK)
        assert tensors["transformer.norm_out.linear.lora_B.weight"].shape == (64, RANK)
    config = json.loads(out.metadata["lora_adapter_metadata"])
    assert config["transformer.r"] == RANK
    assert config["transformer.lora_alpha"] == (2.0 if layout == "kohya" else RANK)  # kohya's alpha kept


# Trigger words


def test_trigger_words_come_from_the_training_metadata() -> None:
    assert trigger_words({"modelspec.trigger_phrase": "zqfox, orange fur"}) == ["zqfox", "orange fur"]
    frequencies = {"10_zqfox": {"zqfox": 12, "snow": 3}, "5_zqfox": {"zqfox": 5, "forest": 5}}
    assert trigger_words({"ss_tag_frequency": json.dumps(frequencies), "ss_output_name": "fox"}) == ["zqfox"]
    tied = {"1_x": {"ohwx": 4, "man": 4, "beard": 1}}
    assert trigger_words({"ss_tag_frequency": json.dumps(tied)}) == ["ohwx", "man"]
    assert trigger_words({"ss_output_name": "redfox_v2"}) == ["redfox_v2"]
    assert trigger_words({"ss_tag_frequency": "not json"}) == []
    sdxl = kohya("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640)
    found = import_lora(file(sdxl, ss_tag_frequency=json.dumps(frequencies)), "sdxl")
    assert found.triggers == ["zqfox"]


# Refusals: one sentence each


def refusal(data: bytes, family: str = "sdxl", **kw: Any) -> str:
    with pytest.raises(LoraRejected) as refused:
        import_lora(data, family, **kw)
    return one_sentence(refused)


SDXL_LORA = file(kohya("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640))


def test_pickles_are_refused_without_being_opened() -> None:
    assert "pickle" in refusal(pickle.dumps({"state_dict": {}}))
    assert "pickle" in refusal(b"PK\x03\x04" + b"\x00" * 100)  # torch's zip container
    assert "pickle" in refusal(SDXL_LORA, filename="fox.ckpt")


def test_not_a_safetensors_file_and_truncated_files_are_refused() -> None:
    assert "not a .safetensors file" in refusal(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert "not a .safetensors file" in refusal(b"abc")
    assert "not a .safetensors file" in refusal(struct.pack("<Q", 20) + b"[1, 2, 3]" + b" " * 11)
    assert "truncated" in refusal(SDXL_LORA[:-10])  # the data ends early
    assert "truncated" in refusal(SDXL_LORA[:40])  # the header ends early


def test_lycoris_networks_are_not_loras() -> None:
    rng = np.random.default_rng(0)
    loha = {f"lora_unet_{SD_BLOCK.replace('.', '_')}_attn1_to_q.hada_w1_a": rng.standard_normal((4, 4))}
    assert "LyCORIS" in refusal(file(loha))


def test_a_full_checkpoint_is_not_a_lora() -> None:
    rng = np.random.default_rng(0)
    checkpoint = {
        "model.diffusion_model.input_blocks.0.0.weight": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
        "first_stage_model.decoder.conv_in.weight": rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
    }
    assert "no LoRA weights" in refusal(file(checkpoint))


def test_a_lora_of_another_family_than_the_base_model_is_refused() -> None:
    flux = file(diffusers("transformer.single_transformer_blocks.0.attn.to_q", 32, 32))
    assert refusal(flux, "sdxl") == (
        "That LoRA was made for Flux models, and the base model you chose is SDXL: choose one of the Flux "
        "base models."
    )
    assert "made for SDXL models" in refusal(SDXL_LORA, "sd15")


def test_a_file_over_the_limit_is_refused_before_it_is_read() -> None:
    assert "above the 1 MiB limit" in refusal(b"\x00" * (1024 * 1024 + 1), max_bytes=1024 * 1024)


def test_a_header_length_that_starts_like_a_pickle_is_still_a_safetensors_file() -> None:
    (length,) = struct.unpack("<Q", SDXL_LORA[:8])
    text = SDXL_LORA[8 : 8 + length].rstrip()
    padded = struct.pack("<Q", 0x280) + text.ljust(0x280) + SDXL_LORA[8 + length :]
    assert padded[:2] == b"\x80\x02"  # what pickle protocol 2 starts with
    assert import_lora(padded, "sdxl").family == "sdxl"
