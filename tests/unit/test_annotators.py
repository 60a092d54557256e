"""Depth and pose maps' drawing (gpu_worker.annotators) and the refusal of an annotated mode whose
annotator is not configured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpu_worker.annotators import COLOURS, depth_image, draw_pose
from studio.catalogue import load_catalogue
from studio.control import ControlAsk, control_for
from studio.errors import InvalidRecipe
from studio.recipe import Recipe

# A person standing, COCO-17 order, in a 64x96 picture.
STANDING = np.array(
    [
        (32, 10),  # nose
        (30, 8), (34, 8), (28, 10), (36, 10),  # eyes, ears (left, right)
        (24, 24), (40, 24),  # shoulders
        (20, 40), (44, 40),  # elbows
        (18, 54), (46, 54),  # wrists
        (27, 56), (37, 56),  # hips
        (27, 72), (37, 72),  # knees
        (27, 88), (37, 88),  # ankles
    ],
    dtype=np.float32,
)  # fmt: skip


def test_depth_is_normalised_greyscale_with_near_bright() -> None:
    inverse_depth = np.tile(np.linspace(0.2, 7.0, 40, dtype=np.float32), (24, 1))  # nearer to the right
    image = depth_image(inverse_depth)
    assert image.mode == "L" and image.size == (40, 24)
    pixels = np.asarray(image).astype(int)
    assert pixels[:, 0].max() == 0 and pixels[:, -1].min() == 255
    assert (np.diff(pixels, axis=1) >= 0).all()  # brighter as it nears
    assert np.asarray(depth_image(np.full((8, 8), 3.0))).tolist() == [[128] * 8] * 8  # flat: mid grey


def test_pose_is_an_openpose_skeleton_on_black() -> None:
    image = draw_pose(STANDING, np.ones(17, dtype=np.float32), (64, 96))
    assert image.mode == "RGB" and image.size == (64, 96)
    pixels = np.asarray(image).astype(int)
    lit = pixels.sum(axis=2) > 0
    assert lit.sum() > 200 and not lit[:, :12].any() and not lit[:, 54:].any()  # on the body only
    assert tuple(pixels[8, 30]) == COLOURS[15]  # the left eye: OpenPose point 15
    neck = pixels[24, 32]  # between the shoulders: OpenPose's neck point, its own colour
    assert tuple(neck) == COLOURS[1]
    assert tuple(pixels[88, 27]) == COLOURS[13] and tuple(pixels[88, 37]) == COLOURS[10]  # l, r ankle
    assert pixels[80, 27, :].sum() > 0  # the left shin


def test_unseen_keypoints_are_left_out() -> None:
    scores = np.ones(17, dtype=np.float32)
    scores[[13, 15]] = 0.1  # the left knee and ankle: not seen
    image = np.asarray(draw_pose(STANDING, scores, (64, 96))).astype(int)
    assert image[80, 25:30].sum() == 0 and image[88, 25:30].sum() == 0
    assert image[88, 37].sum() > 0
    dark = np.asarray(draw_pose(STANDING, np.zeros(17, dtype=np.float32), (64, 96)))
    assert not dark.any()  # nobody seen: all black
    with pytest.raises(ValueError, match="17 COCO keypoints"):
        draw_pose(STANDING[:5], np.ones(5, dtype=np.float32), (64, 96))


def test_an_annotated_mode_without_its_annotator_is_refused_in_one_sentence(tmp_path: Path) -> None:
    for name, marker in (("base", "model_index.json"), ("cn", "config.json")):
        (tmp_path / name).mkdir()
        (tmp_path / name / marker).write_text("{}")
    path = tmp_path / "models.toml"
    path.write_text(
        '[models.m]\nfamily = "sd15"\nsource = "base"\ndescription = "m"\n\n'
        '[controlnets.sd15.depth]\nsource = "cn"\n\n'
        '[controlnets.sd15.pose]\nsource = "cn"\nannotator = "cn"\n'
    )
    catalogue = load_catalogue(path)
    recipe = Recipe(
        model="m", family="sd15", prompt="a cat", seed=1, steps=2, guidance=5, width=64, height=64
    )
    with pytest.raises(
        InvalidRecipe, match=r"depth ControlNet for SD 1\.5 models has no annotator"
    ) as refused:
        control_for(catalogue, recipe, ControlAsk(b"", "depth"))
    assert str(refused.value).count(". ") == 0 and str(refused.value).endswith(".")
    pose = control_for(catalogue, recipe, ControlAsk(b"", "pose", strength=0.8))
    assert (pose.mode, pose.strength) == ("pose", 0.8)
