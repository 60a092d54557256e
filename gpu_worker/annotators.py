"""Depth and pose maps for ControlNet, by the mode's annotator model, on an inference worker.

The annotator is this worker's own ``annotator`` of ``[controlnets.<family>.<mode>]`` (its models
file), never a source named in the payload; it is loaded once per worker and kept (small next to
a diffusion model), loaded again only when the configured folder changes.

- depth: ``AutoModelForDepthEstimation`` with its image processor (DPT, e.g. Intel/dpt-hybrid-midas,
  or Depth Anything, e.g. LiheYoung/depth-anything-small-hf: both predict relative inverse depth).
  The map is that prediction normalised to 0..255 as a greyscale PNG, near = bright, which is what
  the depth ControlNets were trained on.
- pose: ``VitPoseForPoseEstimation`` (e.g. usyd-community/vitpose-base-simple) run on the whole
  picture as one person box (no person detector: one person per control image), letterboxed to
  the model's input size; each keypoint is its heatmap's peak. The 17 COCO keypoints become
  OpenPose's 18 (the neck between the shoulders) drawn as OpenPose draws them: coloured sticks and
  dots on black, what the OpenPose ControlNets were trained on.

Both maps are the recipe's size: the source is cropped to it first, as the weightless maps are.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps

from gpu_worker.pipelines import PipelineCache
from gpu_worker.trusted import open_image
from studio import jobs
from studio.controlnets import ANNOTATED_MODES
from studio.settings import Settings

log = logging.getLogger(__name__)
KEYPOINT_THRESHOLD = 0.3  # a pose keypoint whose heatmap peak is lower is not drawn

# OpenPose's 18 body points from COCO's 17 (None: the neck, between the shoulders).
# COCO: 0 nose, 1-2 eyes (l, r), 3-4 ears, 5-6 shoulders, 7-8 elbows, 9-10 wrists, 11-12 hips,
# 13-14 knees, 15-16 ankles. OpenPose: nose, neck, r shoulder/elbow/wrist, l shoulder/elbow/wrist,
# r hip/knee/ankle, l hip/knee/ankle, r eye, l eye, r ear, l ear.
OPENPOSE_FROM_COCO: tuple[int | None, ...] = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
# OpenPose's limbs (pairs of its points) and colours, as its ControlNet annotator draws them.
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip


class AnnotatorRefused(Exception):
    """Words for the requester: no annotator here, an unreadable image, weights that will not load."""


def fitted(data: bytes, width: int, height: int, max_pixels: int, max_bytes: int) -> Image.Image:
    """The uploaded control image (checked from its header first) cropped to the recipe's size."""
    source = open_image(data, max_bytes, max_pixels, "the control image")
    try:
        picture = ImageOps.exif_transpose(source).convert("RGB")
    except (OSError, SyntaxError) as exc:
        raise AnnotatorRefused(f"the control image is damaged ({exc})") from None
    return ImageOps.fit(picture, (width, height), Image.Resampling.LANCZOS)


class DepthAnnotator:
    def __init__(self, source: str, device: str) -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.device = device
        self.processor: Any = AutoImageProcessor.from_pretrained(source, local_files_only=True)
        model: Any = AutoModelForDepthEstimation.from_pretrained(source, local_files_only=True)
        self.model = model.to(device).eval()

    def __call__(self, image: Image.Image) -> Image.Image:
        """The normalised depth of ``image`` at its size, greyscale, near = bright."""
        inputs = self.processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            predicted = self.model(pixel_values=inputs["pixel_values"].to(self.device)).predicted_depth
            depth = torch.nn.functional.interpolate(
                predicted.unsqueeze(1).float(), size=(image.height, image.width), mode="bicubic"
            )[0, 0].cpu()
        return depth_image(depth.numpy())


def depth_image(depth: np.ndarray) -> Image.Image:
    """Relative inverse depth (bigger = nearer) normalised to 0..255 greyscale; flat: mid grey."""
    low, high = float(depth.min()), float(depth.max())
    if not np.isfinite(low) or not np.isfinite(high) or high - low < 1e-6:
        return Image.new("L", (depth.shape[1], depth.shape[0]), 128)
    scaled = (depth - low) / (high - low) * 255.0
    return Image.fromarray(np.clip(scaled, 0, 255).round().astype(np.uint8), "L")


class PoseAnnotator:
    def __init__(self, source: str, device: str) -> None:
        from transformers import AutoImageProcessor, VitPoseForPoseEstimation

        self.device = device
        self.processor: Any = AutoImageProcessor.from_pretrained(source, local_files_only=True)
        model: Any = VitPoseForPoseEstimation.from_pretrained(source, local_files_only=True)
        self.model = model.to(device).eval()

    def keypoints(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        """The 17 COCO keypoints (x, y in ``image``'s pixels) and their scores, the whole picture
        taken as one person: letterboxed into the model's input, each point its heatmap's peak."""
        size = self.processor.size
        in_w, in_h = int(size["width"]), int(size["height"])
        scale = min(in_w / image.width, in_h / image.height)
        w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        left, top = (in_w - w) // 2, (in_h - h) // 2
        boxed = Image.new("RGB", (in_w, in_h))
        boxed.paste(image.resize((w, h), Image.Resampling.BICUBIC), (left, top))
        pixels = np.asarray(boxed, dtype=np.float32) / 255.0
        mean = np.asarray(self.processor.image_mean, dtype=np.float32)
        std = np.asarray(self.processor.image_std, dtype=np.float32)
        tensor = torch.from_numpy(((pixels - mean) / std).transpose(2, 0, 1).copy())[None]
        with torch.inference_mode():
            heatmaps = self.model(pixel_values=tensor.to(self.device)).heatmaps[0].float().cpu().numpy()
        count, hm_h, hm_w = heatmaps.shape
        flat = heatmaps.reshape(count, -1)
        peak = flat.argmax(axis=1)
        ys, xs = np.divmod(peak, hm_w)
        x = ((xs + 0.5) * in_w / hm_w - left) / scale  # heatmap cell -> input pixel -> image pixel
        y = ((ys + 0.5) * in_h / hm_h - top) / scale
        return np.stack([x, y], axis=1), flat.max(axis=1)

    def __call__(self, image: Image.Image) -> Image.Image:
        points, scores = self.keypoints(image)
        return draw_pose(points, scores, image.size)


def draw_pose(
    points: np.ndarray, scores: np.ndarray, size: tuple[int, int], threshold: float = KEYPOINT_THRESHOLD
) -> Image.Image:
    """COCO-17 keypoints drawn as an OpenPose skeleton on black: limbs as sticks in OpenPose's
    colours (dimmed, as it draws them), its 18 points as dots; points under ``threshold`` left out."""
    if points.shape != (17, 2) or scores.shape != (17,):
        raise ValueError(f"expected 17 COCO keypoints, got {points.shape}")
    body: list[tuple[float, float] | None] = []
    for coco in OPENPOSE_FROM_COCO:
        if coco is None:  # the neck: between both shoulders, when both are seen
            seen = scores[5] >= threshold and scores[6] >= threshold
            mid = (points[5] + points[6]) / 2
            body.append((float(mid[0]), float(mid[1])) if seen else None)
        else:
            seen = scores[coco] >= threshold and bool(np.isfinite(points[coco]).all())
            body.append((float(points[coco][0]), float(points[coco][1])) if seen else None)
    canvas = Image.new("RGB", size)
    draw = ImageDraw.Draw(canvas)
    stick = max(2, round(min(size) / 128))  # OpenPose's 4 px at 512 px
    for (a, b), colour in zip(LIMBS, COLOURS, strict=False):
        pa, pb = body[a], body[b]
        if pa is not None and pb is not None:
            dimmed = tuple(round(c * 0.6) for c in colour)
            draw.line([pa, pb], fill=dimmed, width=stick * 2)
    for point, colour in zip(body, COLOURS, strict=True):
        if point is not None:
            x, y = point
            draw.ellipse((x - stick, y - stick, x + stick, y + stick), fill=colour)
    return canvas


_lock = threading.Lock()
_loaded: dict[tuple[str, str, str], DepthAnnotator | PoseAnnotator] = {}


def annotator(mode: str, source: str, device: str) -> DepthAnnotator | PoseAnnotator:
    """The worker's annotator for ``mode`` from ``source``, loaded on first use and kept (one per
    mode: a changed source replaces it)."""
    with _lock:
        key = (mode, source, device)
        found = _loaded.get(key)
        if found is None:
            for old in [k for k in _loaded if k[0] == mode]:
                del _loaded[old]
            found = DepthAnnotator(source, device) if mode == "depth" else PoseAnnotator(source, device)
            _loaded[key] = found
        return found


def annotate(image: Image.Image, mode: str, source: str, device: str) -> bytes:
    """The ``mode`` map of a fitted picture as PNG (depth: greyscale; pose: RGB)."""
    out = io.BytesIO()
    annotator(mode, source, device)(image).save(out, format="PNG")
    return out.getvalue()


def run_annotate(job: jobs.ControlMapJob, settings: Settings, cache: PipelineCache) -> jobs.AnnotateResult:
    """Blocking: call it in a thread."""
    if job.mode not in ANNOTATED_MODES:
        raise AnnotatorRefused(f"{job.mode} maps are made without an annotator, on the post worker")
    entry = cache.catalogue.controlnet(job.family, job.mode) if cache.catalogue is not None else None
    if entry is None or entry.annotator is None:
        raise AnnotatorRefused(
            f"this worker has no {job.mode} annotator for {job.family or 'these'} models; the operator "
            "must add it to the models file the workers read"
        )
    try:
        image = fitted(
            job.image, job.width, job.height, settings.max_upload_pixels, settings.max_upload_bytes
        )
    except (OSError, ValueError) as error:
        raise AnnotatorRefused(f"the control image could not be read ({error})") from None
    try:
        png = annotate(image, job.mode, entry.annotator, cache.device)
    except OSError as error:  # missing or broken weights: the operator's to fix
        log.error("the %s annotator %s could not be loaded: %s", job.mode, entry.annotator, error)
        raise AnnotatorRefused(
            f"the {job.mode} annotator could not be loaded; the operator can see why in the log"
        ) from None
    return jobs.AnnotateResult(png=png)
