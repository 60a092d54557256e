"""Write a diffusers SD 1.5 or SDXL pipeline as ONE A1111/LDM-layout ``.safetensors`` checkpoint.

The inverse of diffusers' own single-file converters (``diffusers.loaders.single_file_utils``:
``convert_ldm_unet_checkpoint``, ``convert_ldm_vae_checkpoint``, ``convert_ldm_clip_checkpoint``,
``convert_open_clip_checkpoint``), worked out from the models' configs rather than fixed block
counts, so it serves the tiny test models as well as real ones. Tests load the file back with
``from_single_file(config=<the folder>)`` and get the folder model's pixels bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

UNET = "model.diffusion_model."
VAE = "first_stage_model."
SD15_CLIP = "cond_stage_model.transformer."
SDXL_CLIP = "conditioner.embedders.0.transformer."
SDXL_OPEN_CLIP = "conditioner.embedders.1.model."

_UNET_LAYERS = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def _split(key: str, depth: int) -> tuple[list[str], str]:
    parts = key.split(".")
    return parts[:depth], ".".join(parts[depth:])


def _rename(rest: str, table: dict[str, str]) -> str:
    """``rest`` (e.g. "norm1.weight") with its module name (all but the last part) renamed."""
    module, _, leaf = rest.rpartition(".")
    return f"{table.get(module, module)}.{leaf}"


def unet_to_ldm(state: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """A diffusers UNet2DConditionModel's weights under ``model.diffusion_model.`` in LDM names."""
    per_level = config["layers_per_block"] + 1  # LDM slots per level: the resnets, then the resampler
    attended_up = ["CrossAttn" in kind for kind in config["up_block_types"]]
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        out[UNET + _unet_key(key, per_level, attended_up)] = tensor
    return out


def _unet_key(key: str, per_level: int, attended_up: list[bool]) -> str:
    module, _, leaf = key.rpartition(".")
    if module in _UNET_LAYERS:
        return f"{_UNET_LAYERS[module]}.{leaf}"
    parts = key.split(".")
    if parts[0] == "down_blocks":
        level, kind, index = int(parts[1]), parts[2], int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "downsamplers":  # downsamplers.0.conv.* -> the level's last slot, ".0.op"
            return f"input_blocks.{1 + level * per_level + per_level - 1}.0.op.{rest.split('.', 1)[1]}"
        slot = 1 + level * per_level + index
        if kind == "resnets":
            return f"input_blocks.{slot}.0.{_rename(rest, _UNET_RESNET)}"
        return f"input_blocks.{slot}.1.{rest}"  # attentions
    if parts[0] == "mid_block":
        kind, index = parts[1], int(parts[2])
        rest = ".".join(parts[3:])
        if kind == "resnets":  # resnet, attention, resnet -> middle_block.0, .1, .2
            return f"middle_block.{2 * index}.{_rename(rest, _UNET_RESNET)}"
        return f"middle_block.1.{rest}"
    if parts[0] == "up_blocks":
        level, kind, index = int(parts[1]), parts[2], int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "upsamplers":  # after the resnet (and the attention, where the level has one)
            slot = level * per_level + per_level - 1
            return f"output_blocks.{slot}.{2 if attended_up[level] else 1}.{rest}"
        slot = level * per_level + index
        if kind == "resnets":
            return f"output_blocks.{slot}.0.{_rename(rest, _UNET_RESNET)}"
        return f"output_blocks.{slot}.1.{rest}"
    raise ValueError(f"no LDM name for UNet weight {key}")


def vae_to_ldm(state: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """A diffusers AutoencoderKL's weights under ``first_stage_model.`` in LDM names."""
    levels = len(config["up_block_types"])
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        ldm = _vae_key(key, levels)
        if ".mid.attn_1." in ldm and tensor.ndim == 2:  # LDM's attention projections are 1x1 convs
            tensor = tensor[:, :, None, None]
        out[VAE + ldm] = tensor
    return out


def _vae_key(key: str, levels: int) -> str:
    parts = key.split(".")
    side = parts[0]  # encoder, decoder, quant_conv, post_quant_conv
    if side not in ("encoder", "decoder"):
        return key
    rest = ".".join(parts[1:])
    if parts[1] in ("conv_norm_out",):
        return f"{side}.norm_out.{parts[2]}"
    if parts[1] in ("conv_in", "conv_out"):
        return key
    if parts[1] in ("down_blocks", "up_blocks"):
        level, kind = int(parts[2]), parts[3]
        ldm_level = level if side == "encoder" else levels - 1 - level  # LDM counts decoder levels upward
        group = "down" if side == "encoder" else "up"
        if kind in ("downsamplers", "upsamplers"):  # downsamplers.0.conv.*
            sampler = "downsample" if side == "encoder" else "upsample"
            return f"{side}.{group}.{ldm_level}.{sampler}.{'.'.join(parts[5:])}"
        inner = ".".join(parts[5:])
        return f"{side}.{group}.{ldm_level}.block.{parts[4]}.{_rename(inner, _VAE_RESNET)}"
    if parts[1] == "mid_block":
        kind, index = parts[2], int(parts[3])
        inner = ".".join(parts[4:])
        if kind == "resnets":
            return f"{side}.mid.block_{index + 1}.{_rename(inner, _VAE_RESNET)}"
        return f"{side}.mid.attn_1.{_rename(inner, _VAE_ATTENTION)}"
    raise ValueError(f"no LDM name for VAE weight {key} ({rest})")


def clip_to_ldm(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A transformers CLIPTextModel under ``prefix`` in the (pre-5.6) ``text_model.`` layout LDM files use."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith("position_ids"):
            continue
        out[prefix + (key if key.startswith("text_model.") else f"text_model.{key}")] = tensor
    return out


def open_clip_to_ldm(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A CLIPTextModelWithProjection as OpenCLIP (SDXL's second encoder): fused q/k/v, ``resblocks``."""
    flat = {key.removeprefix("text_model."): tensor for key, tensor in state.items()}
    out: dict[str, torch.Tensor] = {
        prefix + "positional_embedding": flat.pop("embeddings.position_embedding.weight"),
        prefix + "token_embedding.weight": flat.pop("embeddings.token_embedding.weight"),
        prefix + "ln_final.weight": flat.pop("final_layer_norm.weight"),
        prefix + "ln_final.bias": flat.pop("final_layer_norm.bias"),
        prefix + "text_projection": flat.pop("text_projection.weight").T.contiguous(),
    }
    flat.pop("embeddings.position_ids", None)
    layers = sorted({int(key.split(".")[2]) for key in flat if key.startswith("encoder.layers.")})
    for layer in layers:
        source = f"encoder.layers.{layer}."
        target = f"{prefix}transformer.resblocks.{layer}."
        for leaf in ("weight", "bias"):
            out[f"{target}attn.in_proj_{leaf}"] = torch.cat(
                [flat.pop(f"{source}self_attn.{p}_proj.{leaf}") for p in ("q", "k", "v")]
            )
        for key in [k for k in flat if k.startswith(source)]:
            out[target + _rename(key.removeprefix(source), _OPEN_CLIP_LAYER)] = flat.pop(key)
    if flat:
        raise ValueError(f"no OpenCLIP name for {sorted(flat)[:3]}")
    return out


def pipeline_to_ldm(pipe: Any) -> dict[str, torch.Tensor]:
    """One LDM-layout state dict for an SD 1.5 or SDXL pipeline (UNet, VAE and text encoders)."""
    weights = {
        **unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config),
        **vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config),
    }
    if getattr(pipe, "text_encoder_2", None) is not None:  # SDXL: CLIP-L, then OpenCLIP bigG
        weights.update(clip_to_ldm(pipe.text_encoder.state_dict(), SDXL_CLIP))
        weights.update(open_clip_to_ldm(pipe.text_encoder_2.state_dict(), SDXL_OPEN_CLIP))
    else:
        weights.update(clip_to_ldm(pipe.text_encoder.state_dict(), SD15_CLIP))
    return {key: tensor.detach().contiguous() for key, tensor in weights.items()}


def write_single_file(folder: Path, out: Path) -> Path:
    """Write the diffusers SD 1.5/SDXL pipeline in ``folder`` as one LDM ``.safetensors`` at ``out``."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    save_file(pipe_weights := pipeline_to_ldm(pipe), partial, metadata={"format": "pt"})
    del pipe_weights
    partial.replace(out)  # never leave a half-written checkpoint under the final name
    return out
