"""Tiny random IP-Adapters (style and character) for the tiny SD 1.5 and SDXL, a style one for the
tiny Flux, and their tiny CLIP image encoder, laid out as a catalogue's ``[ip_adapter.<family>]``
table points at real ones.

The SD files hold the keys h94/IP-Adapter's ``.safetensors`` files hold (``image_proj.*``,
``ip_adapter.<n>.to_k_ip/to_v_ip.weight``), shaped for each tiny UNet; the Flux one the keys of
XLabs-AI/flux-ip-adapter's ``ip_adapter.safetensors`` (``ip_adapter_proj_model.*``,
``double_blocks.<n>.processor.ip_adapter_double_stream_{k,v}_proj.{weight,bias}``), shaped for the
tiny transformer; all load through diffusers' own ``load_ip_adapter`` conversion as real ones do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TINY_IP_VERSION = 2
EMBED_DIM = 32  # the tiny image encoder's projection size: the adapters' image embedding size
TOKENS = 4  # image tokens each adapter adds to the cross-attention


def make_image_encoder(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        projection_dim=EMBED_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
    )
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    return folder


def make_adapter(unet_folder: Path, file: Path, seed: int) -> Path:
    """A random IP-Adapter file for the UNet saved in ``unet_folder`` (as diffusers' tests make them)."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(unet_folder)
    cross = int(unet.config.cross_attention_dim)
    channels = list(unet.config.block_out_channels)
    generator = torch.Generator().manual_seed(seed)

    def weights(rows: int, columns: int) -> torch.Tensor:
        return torch.randn(rows, columns, generator=generator) / columns**0.5

    tensors: dict[str, torch.Tensor] = {}
    key = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):  # self-attention takes no image tokens
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        tensors[f"ip_adapter.{key}.to_k_ip.weight"] = weights(hidden, cross)
        tensors[f"ip_adapter.{key}.to_v_ip.weight"] = weights(hidden, cross)
        key += 2
    tensors["image_proj.proj.weight"] = weights(cross * TOKENS, EMBED_DIM)
    tensors["image_proj.proj.bias"] = torch.zeros(cross * TOKENS)
    tensors["image_proj.norm.weight"] = torch.ones(cross)
    tensors["image_proj.norm.bias"] = torch.zeros(cross)
    file.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(file))
    return file


def make_flux_adapter(transformer_folder: Path, file: Path, seed: int) -> Path:
    """A random Flux IP-Adapter file, in XLabs' layout, for the transformer saved in
    ``transformer_folder`` (one image-attention pair per double-stream block)."""
    import torch
    from safetensors.torch import save_file

    config = json.loads((transformer_folder / "config.json").read_text())
    joint = int(config["joint_attention_dim"])  # the image tokens' width, as the text tokens'
    inner = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
    generator = torch.Generator().manual_seed(seed)

    def weights(rows: int, columns: int) -> torch.Tensor:
        return torch.randn(rows, columns, generator=generator) / columns**0.5

    tensors: dict[str, torch.Tensor] = {}
    for block in range(int(config["num_layers"])):
        for which in ("k", "v"):
            name = f"double_blocks.{block}.processor.ip_adapter_double_stream_{which}_proj"
            tensors[f"{name}.weight"] = weights(inner, joint)
            tensors[f"{name}.bias"] = torch.zeros(inner)
    tensors["ip_adapter_proj_model.proj.weight"] = weights(joint * TOKENS, EMBED_DIM)
    tensors["ip_adapter_proj_model.proj.bias"] = torch.zeros(joint * TOKENS)
    tensors["ip_adapter_proj_model.norm.weight"] = torch.ones(joint)
    tensors["ip_adapter_proj_model.norm.bias"] = torch.zeros(joint)
    file.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(file))
    return file


def make_ip_adapters(root: Path, built: dict[str, Path]) -> dict[str, Path]:
    """``root/tiny-ip-adapter``: ``image_encoder/``, ``<family>/{style,character}.safetensors``
    for the tiny SD 1.5 and SDXL and ``flux/style.safetensors`` for the tiny Flux in ``built``
    (rebuilt whenever they are)."""
    folder = root / "tiny-ip-adapter"
    marker = folder / "atelier-tiny.json"
    bases = [built[f"tiny-{family}"] / "atelier-tiny.json" for family in ("sd15", "sdxl", "flux")]
    current = (
        marker.is_file()
        and json.loads(marker.read_text()).get("version") == TINY_IP_VERSION
        and all(marker.stat().st_mtime >= base.stat().st_mtime for base in bases)
    )
    if not current:
        shutil.rmtree(folder, ignore_errors=True)
        make_image_encoder(folder / "image_encoder")
        for seed, family in enumerate(("sd15", "sdxl")):
            unet = built[f"tiny-{family}"] / "unet"
            make_adapter(unet, folder / family / "style.safetensors", 10 + seed)
            make_adapter(unet, folder / family / "character.safetensors", 20 + seed)
        make_flux_adapter(built["tiny-flux"] / "transformer", folder / "flux" / "style.safetensors", 30)
        marker.write_text(json.dumps({"version": TINY_IP_VERSION}))
    return {"tiny-ip-adapter": folder}
