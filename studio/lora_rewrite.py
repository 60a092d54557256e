"""Flux and peft LoRA files rewritten into diffusers' naming, so ``load_lora_weights`` serves them.

diffusers' own converters for Flux files in the original model's naming (kohya
``lora_unet_double_blocks_*``, BFL/ai-toolkit ``diffusion_model.double_blocks.*``, XLabs
``*.processor.qkv_lora1.*``) assume the full-size model's widths; here the fused q/k/v (and
single-block MLP) projections are split by rows of ``lora_up``, which are contiguous bytes, and
kohya's per-module alphas travel as peft's ``alpha_pattern``. Nothing needs torch.
"""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from studio.errors import LoraRejected
from studio.safetensors_header import Safetensors, TensorInfo, write_safetensors

Format = Literal["kohya", "diffusers", "peft", "bfl", "xlabs"]
ADAPTER_METADATA_KEY = "lora_adapter_metadata"  # diffusers' key for the peft LoraConfig

# BFL module -> its diffusers module(s) in a double block; several: a fused projection split by rows.
_DOUBLE = {
    "img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "img_attn.proj": ("attn.to_out.0",),
    "img_mlp.0": ("ff.net.0.proj",),
    "img_mlp.2": ("ff.net.2",),
    "img_mod.lin": ("norm1.linear",),
    "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "txt_attn.proj": ("attn.to_add_out",),
    "txt_mlp.0": ("ff_context.net.0.proj",),
    "txt_mlp.2": ("ff_context.net.2",),
    "txt_mod.lin": ("norm1_context.linear",),
}
_SINGLE = {
    "linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"),
    "linear2": ("proj_out",),
    "modulation.lin": ("norm.linear",),
    "qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),  # XLabs' single-block LoRA: attention only
}
_TOP = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
    "final_layer.linear": "proj_out",
    "final_layer.adaLN_modulation.1": "norm_out.linear",
}
_XLABS = {"qkv_lora1": "img_attn.qkv", "proj_lora1": "img_attn.proj", "qkv_lora2": "txt_attn.qkv",
          "proj_lora2": "txt_attn.proj", "qkv_lora": "qkv", "proj_lora": "linear2"}  # fmt: skip
_ENCODER = "te:"  # marks a text encoder module among the BFL names
# kohya's underscored names back to BFL's dotted ones
_KOHYA_NAMES = {key.replace(".", "_"): key for key in (*_DOUBLE, *_SINGLE, *_TOP)}


@dataclass
class _Module:
    down: str | None = None
    up: str | None = None
    alpha: str | None = None


def flux_to_diffusers(file: Safetensors, fmt: Format) -> bytes:
    """A Flux LoRA in kohya, BFL or XLabs naming rewritten as a diffusers one (tensor bytes unchanged)."""
    modules: dict[str, _Module] = {}
    for name in file.tensors:
        bfl, part = _bfl_name(name, fmt)
        module = modules.setdefault(bfl, _Module())
        setattr(module, part, name)
    out: dict[str, tuple[str, tuple[int, ...], bytes]] = {}
    alphas: dict[str, dict[str, float]] = {}  # per diffusers component: module -> alpha
    ranks: dict[str, dict[str, int]] = {}
    for bfl, module in modules.items():
        if module.down is None or module.up is None:
            raise LoraRejected(f"That Flux LoRA is incomplete: `{bfl}` lacks its down or up weights.")
        targets = _targets(bfl)
        down, up = file.tensors[module.down], file.tensors[module.up]
        rank = down.shape[0]
        alpha = _scalar(file, module.alpha) if module.alpha else float(rank)
        sizes = _split_sizes(bfl, targets, down, up)
        row_bytes = (up.end - up.start) // up.shape[0]
        first = 0
        up_raw = file.raw(module.up)
        if bfl == "final_layer.adaLN_modulation.1":  # BFL orders (shift, scale); diffusers (scale, shift)
            half = len(up_raw) // 2
            up_raw = up_raw[half:] + up_raw[:half]
        for key, rows in zip(targets, sizes, strict=True):
            component, _, target = key.partition(".")
            out[f"{key}.lora_A.weight"] = (down.dtype, down.shape, file.raw(module.down))
            out[f"{key}.lora_B.weight"] = (
                up.dtype,
                (rows, *up.shape[1:]),
                up_raw[first * row_bytes : (first + rows) * row_bytes],
            )
            first += rows
            # transformers 5 holds CLIP's modules as ``encoder...`` (4: ``text_model.encoder...``);
            # the file keeps the checkpoint names, the config the suffix both end with.
            target = target.removeprefix("text_model.")
            alphas.setdefault(component, {})[target] = alpha
            ranks.setdefault(component, {})[target] = rank
    config: dict[str, object] = {}
    for component in ranks:
        config |= _adapter_config(component, ranks[component], alphas[component])
    return write_safetensors(out, {"format": "pt", ADAPTER_METADATA_KEY: json.dumps(config)})


def _bfl_name(name: str, fmt: Format) -> tuple[str, str]:
    """(BFL module name, 'down' | 'up' | 'alpha') of one tensor."""
    if fmt == "kohya":
        stem, _, kind = name.partition(".")
        part = {"lora_down.weight": "down", "lora_up.weight": "up", "alpha": "alpha"}.get(kind)
        encoder = re.fullmatch(
            r"lora_te1?_text_model_encoder_layers_(\d+)_(self_attn_[qkv]_proj|self_attn_out_proj|mlp_fc[12])",
            stem,
        )
        if encoder is not None and part is not None:  # CLIP-L, which kohya trains beside Flux
            layer = encoder[2].replace("self_attn_", "self_attn.").replace("mlp_", "mlp.")
            return f"{_ENCODER}text_model.encoder.layers.{encoder[1]}.{layer}", part
        match = re.fullmatch(r"lora_unet_(?:(double|single)_blocks_(\d+)_)?(.+)", stem)
        if part is None or match is None or match[3] not in _KOHYA_NAMES:
            raise _unsupported(name)
        module = _KOHYA_NAMES[match[3]]
        return (f"{match[1]}_blocks.{match[2]}.{module}" if match[1] else module), part
    name = name.removeprefix("diffusion_model.")
    if fmt == "xlabs":
        match = re.fullmatch(r"(double|single)_blocks\.(\d+)\.processor\.(\w+)\.(down|up)\.weight", name)
        if match is None or match[3] not in _XLABS:
            raise _unsupported(name)
        return f"{match[1]}_blocks.{match[2]}.{_XLABS[match[3]]}", match[4]
    match = re.fullmatch(r"(.+)\.(lora_A|lora_B|lora_down|lora_up)\.weight|(.+)\.alpha", name)
    if match is None:
        raise _unsupported(name)
    if match[3]:
        return match[3], "alpha"
    return match[1], "down" if match[2] in ("lora_A", "lora_down") else "up"


def _targets(bfl: str) -> tuple[str, ...]:
    """The diffusers modules (``component.module``) one BFL module's LoRA becomes."""
    if bfl.startswith(_ENCODER):
        return (f"text_encoder.{bfl.removeprefix(_ENCODER)}",)
    match = re.fullmatch(r"(double|single)_blocks\.(\d+)\.(.+)", bfl)
    if match:
        table = _DOUBLE if match[1] == "double" else _SINGLE
        block = "transformer_blocks" if match[1] == "double" else "single_transformer_blocks"
        if match[3] in table:
            return tuple(f"transformer.{block}.{match[2]}.{target}" for target in table[match[3]])
    elif bfl in _TOP:
        return (f"transformer.{_TOP[bfl]}",)
    raise _unsupported(bfl)


def _split_sizes(bfl: str, targets: tuple[str, ...], down: TensorInfo, up: TensorInfo) -> list[int]:
    """Rows of the fused ``lora_up`` per target: equal thirds, or q/k/v of the hidden width then the MLP."""
    rows = up.shape[0]
    if len(targets) == 1:
        return [rows]
    if len(targets) == 3 and rows % 3 == 0:
        return [rows // 3] * 3
    width = down.shape[1]  # a single block's linear1 reads the hidden state: q, k and v are that wide
    if len(targets) == 4 and rows > 3 * width:
        return [width, width, width, rows - 3 * width]
    raise LoraRejected(f"That Flux LoRA's `{bfl}` has a shape Atelier cannot split ({rows} rows).")


def _scalar(file: Safetensors, name: str) -> float:
    info = file.tensors[name]
    raw = file.raw(name)
    formats = {"F32": "<f", "F64": "<d", "F16": "<e", "I64": "<q", "I32": "<i"}
    if info.dtype == "BF16":  # the top half of an f32
        return float(struct.unpack("<f", b"\x00\x00" + raw[:2])[0])
    if info.dtype not in formats:
        raise _unsupported(name)
    return float(struct.unpack(formats[info.dtype], raw[: struct.calcsize(formats[info.dtype])])[0])


def _adapter_config(component: str, ranks: dict[str, int], alphas: dict[str, float]) -> dict[str, object]:
    """peft LoraConfig fields as diffusers stores them (``component.field``): rank, alpha, patterns."""
    rank = Counter(ranks.values()).most_common(1)[0][0]
    alpha = Counter(alphas.values()).most_common(1)[0][0]
    config = {
        "r": rank,
        "lora_alpha": alpha,
        "rank_pattern": {module: r for module, r in ranks.items() if r != rank},
        "alpha_pattern": {module: a for module, a in alphas.items() if a != alpha},
        "target_modules": sorted(ranks),
    }
    return {f"{component}.{key}": value for key, value in config.items()}


def peft_to_diffusers(file: Safetensors, component: str) -> bytes:
    """peft's ``base_model.model.<module>`` names under a diffusers component (``unet.``/``transformer.``)."""
    peft = "base_model.model."
    out = {
        (f"{component}.{name.removeprefix(peft)}" if name.startswith(peft) else name): (
            info.dtype,
            info.shape,
            file.raw(name),
        )
        for name, info in file.tensors.items()
    }
    return write_safetensors(out, file.metadata)


def _unsupported(name: str) -> LoraRejected:
    return LoraRejected(f"That Flux LoRA holds a layer Atelier does not know how to apply (`{name[:80]}`).")
