"""The diffusers/peft LoRA file in kohya's naming (A1111, ComfyUI, Civitai, and diffusers' own kohya loader).

kohya keys are the module paths with ``_`` for ``.``: ``lora_unet_<path>.lora_down.weight`` (peft's
lora_A), ``.lora_up.weight`` (lora_B) and a scalar ``.alpha``; the scale is alpha / rank. peft keeps
alpha in the adapter config, which diffusers writes into the file's metadata, so it is read from there.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import torch
from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
from safetensors.torch import load, save

from gpu_worker.kohya_flux import flux_to_kohya, is_flux_lora

_METADATA_KEY = "lora_adapter_metadata"  # diffusers' key (loaders.lora_base.LORA_ADAPTER_METADATA_KEY)
# kohya prefix -> the diffusers component whose adapter config applies
_COMPONENTS = {"lora_unet_": "unet", "lora_te1_": "text_encoder", "lora_te2_": "text_encoder_2"}


def to_kohya(weights: bytes) -> bytes:
    """Convert a diffusers/peft LoRA safetensors file (bytes) to a kohya one (bytes)."""
    configs = _adapter_configs(read_metadata(weights))  # also checks the header
    try:
        tensors = load(weights)
    except Exception as exc:  # safetensors' own error type: say what it means here
        raise ValueError(f"not a safetensors file ({exc})") from exc
    if not tensors or not all(".lora_A." in key or ".lora_B." in key for key in tensors):
        raise ValueError("not a diffusers/peft LoRA file (expected only lora_A / lora_B weights)")
    if is_flux_lora(tensors):  # diffusers' converter knows the UNets' names only
        return _flux(tensors, configs)
    converted = convert_state_dict_to_kohya(tensors)
    sd1 = not any(key.startswith("lora_te2_") for key in converted)
    out: dict[str, torch.Tensor] = {}
    ranks: set[int] = set()
    alphas: set[float] = set()
    for key, tensor in converted.items():
        module, _, kind = key.partition(".")
        if kind == "alpha":
            # diffusers writes alpha = rank (scale 1); the real alpha is in the adapter config.
            rank = int(tensor.item())
            alpha = _alpha(configs, module, rank)
            tensor = torch.tensor(alpha, dtype=torch.float32)
            ranks.add(rank)
            alphas.add(alpha)
        else:
            tensor = tensor.contiguous()
        if sd1 and module.startswith("lora_te1_"):  # SD 1.x has one text encoder: kohya calls it lora_te
            key = "lora_te_" + key.removeprefix("lora_te1_")
        out[key] = tensor
    metadata = {"ss_network_module": "networks.lora"}
    if len(ranks) == 1 and len(alphas) == 1:
        metadata |= {"ss_network_dim": str(ranks.pop()), "ss_network_alpha": _number(alphas.pop())}
    return stable_bytes(save(out, metadata=metadata))


def _flux(tensors: dict[str, torch.Tensor], configs: dict[str, dict[str, Any]]) -> bytes:
    config = configs.get("transformer")
    if config and (config.get("alpha_pattern") or config.get("rank_pattern")):
        raise ValueError("per-module alpha or rank patterns cannot be exported to kohya yet")
    alpha = float(config["lora_alpha"]) if config and "lora_alpha" in config else None
    metadata = {"ss_network_module": "networks.lora_flux", "ss_base_model_version": "flux1"}
    if config and "r" in config:  # the rank each part trained at (fused layers stack them)
        shown = alpha if alpha is not None else float(config["r"])
        metadata |= {"ss_network_dim": str(config["r"]), "ss_network_alpha": _number(shown)}
    return stable_bytes(save(flux_to_kohya(tensors, alpha), metadata=metadata))


def read_metadata(data: bytes) -> dict[str, str]:
    """A safetensors file's ``__metadata__``."""
    header, _ = _split(data)
    metadata = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in metadata.items()}


def stable_bytes(data: bytes) -> bytes:
    """The same safetensors file with its header's keys sorted.

    safetensors writes the metadata from a hash map, in an order that changes from one save to
    the next; sorted, the same tensors and metadata always give the same bytes (and digest).
    Tensor offsets are relative to the data section, so rewriting the header moves nothing.
    """
    header, body = _split(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes with spaces
    return struct.pack("<Q", len(text)) + text + body


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, data section): a little-endian u64 header length, the JSON header, the tensors."""
    if len(data) < 8:
        raise ValueError("not a safetensors file")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError("not a safetensors file (header longer than the file)")
    header = json.loads(data[8 : 8 + length])
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file (header is not a JSON object)")
    return header, data[8 + length :]


def _adapter_configs(metadata: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per component ("unet", "text_encoder", ...), the LoraConfig fields diffusers stored."""
    raw = metadata.get(_METADATA_KEY)
    if raw is None:
        return {}
    flat: dict[str, Any] = json.loads(raw)
    configs: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        component, _, field = key.rpartition(".")
        configs.setdefault(component, {})[field] = value
    return configs


def _alpha(configs: dict[str, dict[str, Any]], module: str, rank: int) -> float:
    component = next((name for prefix, name in _COMPONENTS.items() if module.startswith(prefix)), None)
    config = configs.get(component or "")
    if config is None:  # no metadata: diffusers loads such a file at alpha = rank
        return float(rank)
    if config.get("alpha_pattern") or config.get("rank_pattern"):
        raise ValueError("per-module alpha or rank patterns cannot be exported to kohya yet")
    if int(config.get("r", rank)) != rank:
        raise ValueError(f"{module}: rank {rank} differs from the adapter's r={config.get('r')}")
    return float(config.get("lora_alpha", rank))


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)
