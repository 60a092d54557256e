"""A diffusers/peft Flux LoRA in kohya's layout (sd-scripts' ``lora_flux``: ComfyUI, Forge, diffusers).

kohya names Flux's layers as Black Forest Labs' checkpoint does, where q, k and v are one fused
linear (``img_attn_qkv``), and a single block's q, k, v and MLP input are one more (``linear1``).
diffusers keeps them apart. Separate adapters on the parts of a fused layer are written as one
adapter whose down matrix stacks theirs and whose up matrix is block-diagonal: it changes each
part exactly as before, and it is the layout sd-scripts itself writes for split q/k/v, which
diffusers' loader recognises and splits back. Its rank is the parts' ranks summed, so its alpha
is scaled the same way to keep alpha / rank, the adapter's strength.
"""

from __future__ import annotations

import re
from typing import Any

import torch

__all__ = ["flux_to_kohya", "is_flux_lora"]

_PREFIX = "transformer."
_DOUBLE = re.compile(r"^transformer_blocks\.(\d+)\.(.+)$")
_SINGLE = re.compile(r"^single_transformer_blocks\.(\d+)\.(.+)$")
# diffusers layer (within its block) -> kohya layer; tuples are fused layers, in kohya's order.
_DOUBLE_LAYERS: dict[str, tuple[str, ...]] = {
    "img_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "img_attn_proj": ("attn.to_out.0",),
    "img_mlp_0": ("ff.net.0.proj",),
    "img_mlp_2": ("ff.net.2",),
    "img_mod_lin": ("norm1.linear",),
    "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "txt_attn_proj": ("attn.to_add_out",),
    "txt_mlp_0": ("ff_context.net.0.proj",),
    "txt_mlp_2": ("ff_context.net.2",),
    "txt_mod_lin": ("norm1_context.linear",),
}
_SINGLE_LAYERS: dict[str, tuple[str, ...]] = {
    "linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"),
    "linear2": ("proj_out",),
    "modulation_lin": ("norm.linear",),
}


def is_flux_lora(tensors: dict[str, torch.Tensor]) -> bool:
    return any(key.startswith(_PREFIX) for key in tensors)


def flux_to_kohya(tensors: dict[str, torch.Tensor], alpha: float | None) -> dict[str, torch.Tensor]:
    """kohya tensors for a Flux transformer LoRA; ``alpha`` is the adapter's (None: alpha = rank)."""
    pairs = _pairs(tensors)
    blocks: dict[tuple[str, int], dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    for module, pair in pairs.items():
        match = _DOUBLE.match(module) or _SINGLE.match(module)
        if match is None:
            raise ValueError(f"`{module}` has no place in kohya's Flux layout")
        kind = "double" if module.startswith("transformer_blocks.") else "single"
        blocks.setdefault((kind, int(match.group(1))), {})[match.group(2)] = pair
    out: dict[str, torch.Tensor] = {}
    for (kind, number), layers in sorted(blocks.items()):
        table = _DOUBLE_LAYERS if kind == "double" else _SINGLE_LAYERS
        used: set[str] = set()
        for kohya_layer, parts in table.items():
            present = [part for part in parts if part in layers]
            if not present:
                continue
            if len(present) != len(parts):
                missing = ", ".join(sorted(set(parts) - set(present)))
                raise ValueError(
                    f"{kind} block {number}: kohya fuses {', '.join(parts)} into one layer, and this "
                    f"adapter lacks {missing}"
                )
            name = f"lora_unet_{kind}_blocks_{number}_{kohya_layer}"
            out |= _fused(name, [layers[part] for part in parts], alpha)
            used.update(parts)
        if unknown := sorted(set(layers) - used):
            raise ValueError(f"`{unknown[0]}` has no place in kohya's Flux layout")
    return out


def _pairs(tensors: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module -> (lora_A, lora_B) weights, from ``transformer.<module>.lora_[AB].weight`` keys."""
    found: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        if not key.startswith(_PREFIX):
            raise ValueError(
                f"`{key}` is not a Flux transformer weight (text-encoder LoRAs are not exported)"
            )
        module, _, kind = key.removeprefix(_PREFIX).rpartition(".lora_")
        if kind not in ("A.weight", "B.weight"):
            raise ValueError(f"`{key}` is not a LoRA up or down weight")
        found.setdefault(module, {})[kind[0]] = tensor
    pairs = {}
    for module, parts in found.items():
        if set(parts) != {"A", "B"}:
            raise ValueError(f"`{module}` lacks its lora_A or lora_B weight")
        pairs[module] = (parts["A"], parts["B"])
    return pairs


def _fused(name: str, parts: list[tuple[torch.Tensor, torch.Tensor]], alpha: float | None) -> dict[str, Any]:
    """One kohya module from the (down, up) pairs of the parts it fuses (one pair: as it is)."""
    ranks = {down.shape[0] for down, _ in parts}
    if len(ranks) != 1:
        raise ValueError(f"{name}: its parts have different ranks ({sorted(ranks)})")
    rank = ranks.pop()
    down = torch.cat([down for down, _ in parts]).contiguous()
    up = torch.block_diag(*(up for _, up in parts)).contiguous()
    scale = (alpha if alpha is not None else float(rank)) / rank  # the adapter's strength, kept
    return {
        f"{name}.lora_down.weight": down,
        f"{name}.lora_up.weight": up,
        f"{name}.alpha": torch.tensor(scale * down.shape[0], dtype=torch.float32),
    }
