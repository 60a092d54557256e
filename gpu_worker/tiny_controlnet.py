"""Tiny random ControlNets for tests and the demo: ``ControlNetModel.from_unet`` of the tiny SD 1.5
and SDXL UNets, one per family for canny (a real ControlNet for another mode is the same shape).

A ControlNet made from a UNet starts with zero convolutions, which add nothing; the tiny ones get
small random weights there instead, so a control map visibly changes what they make.
"""

from __future__ import annotations

import json
from pathlib import Path

CONTROLNET_VERSION = 1
# name -> the tiny base model whose UNet it copies
TINY_CONTROLNETS = {"tiny-sd15-canny": "tiny-sd15", "tiny-sdxl-canny": "tiny-sdxl"}


def make_controlnet(base: Path, folder: Path, seed: int = 0) -> Path:
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 16, 16))
    zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    with torch.no_grad():
        for conv in [*zero_convs, controlnet.controlnet_cond_embedding.conv_out]:
            conv.weight.normal_(0.0, 0.3)
            if conv.bias is not None:
                conv.bias.normal_(0.0, 0.1)
    controlnet.save_pretrained(folder)
    return folder


def make_tiny_controlnets(root: Path, built: dict[str, Path]) -> dict[str, Path]:
    """The tiny ControlNets under ``root``, rebuilt when missing, older, or their base is newer."""
    made: dict[str, Path] = {}
    for name, base in TINY_CONTROLNETS.items():
        folder, base_marker = root / name, built[base] / "atelier-tiny.json"
        marker = folder / "atelier-tiny.json"
        current = (
            marker.is_file()
            and json.loads(marker.read_text()).get("version") == CONTROLNET_VERSION
            and marker.stat().st_mtime >= base_marker.stat().st_mtime
        )
        if not current:
            make_controlnet(built[base], folder)
            marker.write_text(json.dumps({"version": CONTROLNET_VERSION}))
        made[name] = folder
    return made
