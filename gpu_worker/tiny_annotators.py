"""Tiny random depth and pose annotators, and the tiny SD 1.5 depth and pose ControlNets, for tests
and the demo.

The annotators are transformers' own classes saved with ``save_pretrained`` (a ViT DPT with its
image processor; a ViTPose with its image processor), so they load through the same code as
Intel/dpt-hybrid-midas and usyd-community/vitpose-base-simple. The ControlNets are
``tiny_controlnet.make_controlnet`` of the tiny SD 1.5 UNet, each from its own seed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from gpu_worker.tiny_controlnet import make_controlnet

ANNOTATORS_VERSION = 1


def make_depth(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessorPil

    torch.manual_seed(seed)
    config = DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        backbone_out_indices=[0, 1, 2, 3],
        num_attention_heads=4,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        is_hybrid=False,
    )
    model = DPTForDepthEstimation(config)
    with torch.no_grad():  # the default init predicts one flat depth: a map without a shape
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
        model.head.head[-2].bias.fill_(1.0)  # the last conv before the ReLU: mostly positive depth
    model.save_pretrained(folder)
    DPTImageProcessorPil(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(folder)
    return folder


def make_pose(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        VitPoseBackboneConfig,
        VitPoseConfig,
        VitPoseForPoseEstimation,
        VitPoseImageProcessorPil,
    )

    torch.manual_seed(seed)
    backbone = VitPoseBackboneConfig(
        image_size=[32, 24],
        patch_size=[8, 8],
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        mlp_ratio=2,
        out_indices=[2],
    )
    model = VitPoseForPoseEstimation(VitPoseConfig(backbone_config=backbone, num_labels=17))
    with torch.no_grad():  # random heatmaps whose peaks pass the drawing threshold
        conv = model.head.conv
        conv.weight.normal_(0.0, 0.2)
        conv.bias.fill_(1.0)
    model.save_pretrained(folder)
    VitPoseImageProcessorPil(size={"height": 32, "width": 24}).save_pretrained(folder)
    return folder


def make_annotators(root: Path, built: dict[str, Path]) -> dict[str, Path]:
    """tiny-depth, tiny-pose and the tiny SD 1.5 depth/pose ControlNets under ``root``, rebuilt when
    missing, older, or (the ControlNets) their base is newer."""
    base_marker = built["tiny-sd15"] / "atelier-tiny.json"
    makers: dict[str, Callable[[Path], Path]] = {
        "tiny-depth": make_depth,
        "tiny-pose": make_pose,
        "tiny-sd15-depth": lambda folder: make_controlnet(built["tiny-sd15"], folder, seed=1),
        "tiny-sd15-pose": lambda folder: make_controlnet(built["tiny-sd15"], folder, seed=2),
    }
    made: dict[str, Path] = {}
    for name, maker in makers.items():
        folder = root / name
        marker = folder / "atelier-tiny.json"
        current = (
            marker.is_file()
            and json.loads(marker.read_text()).get("version") == ANNOTATORS_VERSION
            and marker.stat().st_mtime >= base_marker.stat().st_mtime
        )
        if not current:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            maker(folder)
            marker.write_text(json.dumps({"version": ANNOTATORS_VERSION}))
        made[name] = folder
    return made
