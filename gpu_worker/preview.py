"""Live previews: a cheap picture of a running generation's current step, for its status message.

No VAE decode: the latents of the first image are projected to RGB with a fixed linear map per
family (ComfyUI's ``latent_rgb_factors``, fitted against each family's VAE), upscaled a little and
encoded as a small WebP (a few KB). A preview is made at most every ``every_s`` seconds, in the
pipeline's thread at a step's end; the step's progress event then carries it.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from studio.jobs import GenerateJob

PREVIEW_SIDE = 192  # the preview's longest side, pixels
PREVIEW_QUALITY = 60  # WebP quality: a 192 px preview is 1-16 KB (early, noise-like steps the most)

# Latent -> RGB: one row per latent channel, and a bias, from ComfyUI's comfy/latent_formats.py
# (SD15, SDXL, SD3 and Flux). They apply to the latents as the sampler sees them (scaled, shifted).
_SD15 = (
    (
        (0.3512, 0.2297, 0.3227),
        (0.3250, 0.4974, 0.2350),
        (-0.2829, 0.1762, 0.2721),
        (-0.2120, -0.2616, -0.7177),
    ),
    (0.0, 0.0, 0.0),
)
_SDXL = (
    (
        (0.3651, 0.4232, 0.4341),
        (-0.2533, -0.0042, 0.1068),
        (0.1076, 0.1111, -0.0362),
        (-0.3165, -0.2492, -0.2188),
    ),
    (0.1084, -0.0175, -0.0011),
)
_SD3 = (
    (
        (-0.0922, -0.0175, 0.0749),
        (0.0311, 0.0633, 0.0954),
        (0.1994, 0.0927, 0.0458),
        (0.0856, 0.0339, 0.0902),
        (0.0587, 0.0272, -0.0496),
        (-0.0006, 0.1104, 0.0309),
        (0.0978, 0.0306, 0.0427),
        (-0.0042, 0.1038, 0.1358),
        (-0.0194, 0.0020, 0.0669),
        (-0.0488, 0.0130, -0.0268),
        (0.0922, 0.0988, 0.0951),
        (-0.0278, 0.0524, -0.0542),
        (0.0332, 0.0456, 0.0895),
        (-0.0069, -0.0030, -0.0810),
        (-0.0596, -0.0465, -0.0293),
        (-0.1448, -0.1463, -0.1189),
    ),
    (0.2394, 0.2135, 0.1925),
)
_FLUX = (
    (
        (-0.0346, 0.0244, 0.0681),
        (0.0034, 0.0210, 0.0687),
        (0.0275, -0.0668, -0.0433),
        (-0.0174, 0.0160, 0.0617),
        (0.0859, 0.0721, 0.0329),
        (0.0004, 0.0383, 0.0115),
        (0.0405, 0.0861, 0.0915),
        (-0.0236, -0.0185, -0.0259),
        (-0.0245, 0.0250, 0.1180),
        (0.1008, 0.0755, -0.0421),
        (-0.0515, 0.0201, 0.0011),
        (0.0428, -0.0012, -0.0036),
        (0.0817, 0.0765, 0.0749),
        (-0.1264, -0.0522, -0.1103),
        (-0.0280, -0.0881, -0.0499),
        (-0.1262, -0.0982, -0.0778),
    ),
    (-0.0329, -0.0718, -0.0851),
)
FACTORS: dict[str, tuple[tuple[tuple[float, ...], ...], tuple[float, float, float]]] = {
    "sd15": _SD15,
    "sdxl": _SDXL,
    "sd3": _SD3,
    "flux": _FLUX,
}


def spatial(latents: torch.Tensor, width: int, height: int) -> np.ndarray:
    """The first image's latents as a (channels, h, w) float32 array. Flux packs 2x2 patches into
    a sequence (batch, h/2 * w/2, channels * 4): unpacked here, the grid's shape taken from the
    image's."""
    first: np.ndarray = latents[0].detach().float().cpu().numpy()
    if first.ndim == 3:
        return first
    if first.ndim != 2:
        raise ValueError(f"latents of shape {tuple(latents.shape)} cannot be previewed")
    sequence, packed = first.shape
    rows = max(1, round(math.sqrt(sequence * height / max(1, width))))
    cols = sequence // rows
    if rows * cols != sequence or packed % 4:
        raise ValueError(f"packed latents of shape {tuple(latents.shape)} do not fit {width}x{height}")
    channels = packed // 4
    grid: np.ndarray = first.reshape(rows, cols, channels, 2, 2).transpose(2, 0, 3, 1, 4)
    unpacked: np.ndarray = grid.reshape(channels, rows * 2, cols * 2)
    return unpacked


def latents_to_rgb(family: str, latents: torch.Tensor, width: int, height: int) -> Image.Image:
    """A rough RGB picture of the first image's latents: the family's linear map where its channel
    count matches, else the first three channels normalised (any other latent space). The maths is
    numpy on the CPU: torch's thread pool costs more than these few thousand multiply-adds."""
    grid = spatial(latents, width, height)
    known = FACTORS.get(family)
    if known is not None and len(known[0]) == grid.shape[0]:
        factors = np.asarray(known[0], dtype=np.float32)  # (channels, 3)
        rgb = (
            np.tensordot(factors, grid, axes=([0], [0]))
            + np.asarray(known[1], dtype=np.float32)[:, None, None]
        )
        rgb = np.clip((rgb + 1) / 2, 0, 1)  # the maps give roughly -1..1
    else:
        rgb = grid[:3] if grid.shape[0] >= 3 else np.repeat(grid[:1], 3, axis=0)
        low, high = rgb.min(), rgb.max()
        rgb = (rgb - low) / (high - low + 1e-6)
    pixels = (rgb.transpose(1, 2, 0) * 255).round().astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def encode_preview(image: Image.Image, width: int, height: int) -> bytes:
    """The preview at the image's aspect, its longest side PREVIEW_SIDE, as a small WebP."""
    scale = PREVIEW_SIDE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    out = io.BytesIO()
    image.resize(size, Image.Resampling.BILINEAR).save(out, "WEBP", quality=PREVIEW_QUALITY, method=0)
    return out.getvalue()


def make_preview(family: str, latents: torch.Tensor, width: int, height: int) -> bytes:
    return encode_preview(latents_to_rgb(family, latents, width, height), width, height)


class LivePreview:
    """Offered the latents at every step's end; makes a preview at most every ``every_s`` seconds
    and hands it to the next progress event (``take``). A preview that cannot be made is skipped:
    previews never fail a generation."""

    def __init__(
        self,
        family: str,
        width: int,
        height: int,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.family = family
        self.width = width
        self.height = height
        self.every_s = every_s
        self.clock = clock
        self.last = clock()  # the first preview comes after every_s: a short job needs none
        self.failed = False
        self._ready: bytes | None = None
        self._lock = threading.Lock()

    def offer(self, latents: Any) -> None:
        if self.failed or not isinstance(latents, torch.Tensor):
            return
        now = self.clock()
        if now - self.last < self.every_s:
            return
        self.last = now
        try:
            preview = make_preview(self.family, latents, self.width, self.height)
        except (ValueError, RuntimeError, OSError):
            self.failed = True  # an unusual latent layout: no previews for this job
            return
        with self._lock:
            self._ready = preview

    def take(self) -> bytes | None:
        with self._lock:
            preview, self._ready = self._ready, None
        return preview


def live_preview(job: GenerateJob) -> LivePreview | None:
    """The job's previewer, when it asks for previews (``preview_every_s`` > 0)."""
    if job.preview_every_s <= 0:
        return None
    recipe = job.recipe
    return LivePreview(
        str(recipe.get("family", "")), int(recipe["width"]), int(recipe["height"]), job.preview_every_s
    )
