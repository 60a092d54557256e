"""Control maps derived without weights, on the post worker: canny edges, scribble and line art.

All three are white lines on black, the recipe's size (the source cropped to it as an init image
is), which is what the canny, scribble and line-art ControlNets were trained on. Pure numpy and
Pillow: no torch, no OpenCV.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from gpu_worker.trusted import open_image

WEIGHTLESS_MODES = ("canny", "scribble", "lineart")
CANNY_LOW = 0.1  # hysteresis thresholds, as fractions of the strongest gradient
CANNY_HIGH = 0.2
MAX_GROWTH = 64  # hysteresis steps: a weak stretch longer than this without a strong pixel drops


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def sobel(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The horizontal and vertical Sobel gradients (edge pixels repeated at the border)."""
    p = np.pad(grey, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return gx, gy


def _thin(magnitude: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Non-maximum suppression: a pixel stays only where it beats both neighbours across its edge."""
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    p = np.pad(magnitude, 1, mode="constant")
    h, w = magnitude.shape

    def at(dy: int, dx: int) -> np.ndarray:
        return p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    # Gradient direction, in four bins: the neighbours that lie across the edge.
    pairs = (
        ((angle < 22.5) | (angle >= 157.5), at(0, -1), at(0, 1)),
        ((angle >= 22.5) & (angle < 67.5), at(1, 1), at(-1, -1)),
        ((angle >= 67.5) & (angle < 112.5), at(-1, 0), at(1, 0)),
        ((angle >= 112.5) & (angle < 157.5), at(1, -1), at(-1, 1)),
    )
    keep = np.zeros_like(magnitude, dtype=bool)
    for where, a, b in pairs:
        keep |= where & (magnitude > a) & (magnitude >= b)  # ties: one side only
    return np.where(keep, magnitude, 0.0)


def _grow(seeds: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Hysteresis: the seeds, extended through 8-connected ``allowed`` pixels until nothing changes
    (at most ``MAX_GROWTH`` pixels along a weak stretch: longer ones without a strong pixel drop)."""
    current: np.ndarray = seeds & allowed
    for _ in range(MAX_GROWTH):
        mask = Image.fromarray(current.astype(np.uint8) * 255)
        grown: np.ndarray = (np.asarray(mask.filter(ImageFilter.MaxFilter(3))) > 127) & allowed
        if np.array_equal(grown, current):
            break
        current = grown
    return current


def canny(image: Image.Image, low: float = CANNY_LOW, high: float = CANNY_HIGH) -> np.ndarray:
    """Canny edges as a boolean array: smoothed, Sobel, thinned, then double-threshold hysteresis."""
    smooth = image.convert("L").filter(ImageFilter.GaussianBlur(1.0))
    gx, gy = sobel(_grey(smooth))
    magnitude = np.hypot(gx, gy)
    peak = float(magnitude.max())
    if peak <= 1e-6:  # a flat image has no edges
        return np.zeros(magnitude.shape, dtype=bool)
    thin = _thin(magnitude / peak, gx, gy)
    return _grow(thin >= high, thin >= low)


def lineart(image: Image.Image) -> np.ndarray:
    """Line art: the gradient's strength, continuous (thin lines keep their weight), 0..1."""
    gx, gy = sobel(_grey(image.convert("L").filter(ImageFilter.GaussianBlur(0.7))))
    magnitude = np.hypot(gx, gy)
    peak = float(magnitude.max())
    return np.clip(magnitude / peak * 1.5, 0.0, 1.0) if peak > 1e-6 else np.zeros_like(magnitude)


def scribble(image: Image.Image) -> np.ndarray:
    """A scribble: the canny edges, thickened to a few pixels (what a quick drawing looks like)."""
    edges = Image.fromarray(canny(image).astype(np.uint8) * 255)
    side = max(3, (min(image.size) // 128) * 2 + 1)
    return np.asarray(edges.filter(ImageFilter.MaxFilter(side))) > 127


def control_map(data: bytes, mode: str, width: int, height: int, max_pixels: int, max_bytes: int) -> bytes:
    """The ``mode`` map of an uploaded image (PNG, JPEG or WebP), at ``width`` x ``height``, as PNG."""
    if mode not in WEIGHTLESS_MODES:
        raise ValueError(f"a {mode} map needs an annotator model; the post worker makes {WEIGHTLESS_MODES}")
    source = open_image(data, max_bytes, max_pixels, "the control image")
    try:
        picture = ImageOps.exif_transpose(source).convert("RGB")
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"the control image is damaged ({exc})") from None
    fitted = ImageOps.fit(picture, (width, height), Image.Resampling.LANCZOS)
    found = {"canny": canny, "scribble": scribble, "lineart": lineart}[mode](fitted)
    pixels = (np.asarray(found, dtype=np.float32) * 255).round().astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "L").convert("RGB").save(out, format="PNG")
    return out.getvalue()
