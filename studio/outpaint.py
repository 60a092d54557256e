"""Outpainting's pictures: the larger canvas (Zoom Out, pan) and its mask, as pure image logic.

A zoom puts the original in the centre of a canvas ``factor`` times its size; a pan widens (or
heightens) it by half on one side, the original against the other. The new area is masked white
(repainted by the family's inpaint pipeline) and so is a blend band of the original along each
seam, so the new pixels meet the old ones smoothly; everything inside the band is kept exactly
(the worker composites the original back wherever the mask is black). A canvas larger than the
family allows is scaled down as a whole; the working size (the family's multiples) is the inpaint
plan's, as for /inpaint.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from studio.errors import InvalidRecipe
from studio.families import Family

Direction = Literal["left", "right", "up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("left", "right", "up", "down")
ZOOM_MIN, ZOOM_MAX = 1.1, 4.0  # the custom zoom's range (the buttons: 1.5x and 2x)
PAN_WIDEN = 0.5  # a pan adds half the image's width (or height) on its side
OUTPAINT_STRENGTH = 1.0  # the new area is all new: its start (the stretched edge) is only a hint


@dataclass(frozen=True)
class Canvas:
    image: bytes  # PNG: the original (scaled down if need be) on the larger canvas, edges stretched
    mask: bytes  # PNG, the canvas's size: white = repaint (the new area and the blend band)
    size: tuple[int, int]  # the canvas's width and height
    placed: tuple[int, int, int, int]  # where the original lies: left, top, right, bottom
    kept: tuple[int, int, int, int]  # the part of it kept exactly (inside the blend band)
    band: int  # the blend band's width in pixels


def blend_band(width: int, height: int) -> int:
    """How far the repaint reaches into the original along a seam: a sixteenth of its short side
    (at least 4 px), so the new area blends in instead of meeting it at a hard edge."""
    return max(4, round(min(width, height) / 16))


def parse_zoom(text: str) -> float:
    """A custom zoom factor (``1.75``, ``2x``, or with a times sign) from ZOOM_MIN to ZOOM_MAX."""
    cleaned = text.strip().lower().removesuffix("x").removesuffix("×").removeprefix("x").removeprefix("×")
    try:
        factor = float(cleaned.strip())
    except ValueError:
        raise InvalidRecipe(
            "zoom", f"A zoom is a number from {ZOOM_MIN:g} to {ZOOM_MAX:g}, e.g. 1.75 (got `{text[:20]}`)."
        ) from None
    if not (math.isfinite(factor) and ZOOM_MIN <= factor <= ZOOM_MAX):
        raise InvalidRecipe("zoom", f"Zoom out goes from {ZOOM_MIN:g}x to {ZOOM_MAX:g}x (got {factor:g}).")
    return factor


def zoom_edit(factor: float) -> str:
    return f"zoom out {factor:g}x"


def zoom_canvas(png: bytes, factor: float, family: Family) -> Canvas:
    """The image in the centre of a canvas ``factor`` times its size."""
    if not (math.isfinite(factor) and ZOOM_MIN <= factor <= ZOOM_MAX):
        raise InvalidRecipe("zoom", f"Zoom out goes from {ZOOM_MIN:g}x to {ZOOM_MAX:g}x (got {factor:g}).")
    return _canvas(_open(png), (factor, factor), (0.5, 0.5), family)


def pan_canvas(png: bytes, direction: Direction, family: Family) -> Canvas:
    """The image against one side of a canvas half as wide (left, right) or high (up, down) again."""
    grow = 1 + PAN_WIDEN
    scale = (grow, 1.0) if direction in ("left", "right") else (1.0, grow)
    # Where the original sits, as a fraction of the free room: panning left opens room on the left.
    anchor = {"left": (1.0, 0.5), "right": (0.0, 0.5), "up": (0.5, 1.0), "down": (0.5, 0.0)}[direction]
    return _canvas(_open(png), scale, anchor, family)


def _canvas(
    original: Image.Image, scale: tuple[float, float], anchor: tuple[float, float], family: Family
) -> Canvas:
    width, height = original.size
    canvas_w, canvas_h = round(width * scale[0]), round(height * scale[1])
    shrink = min(1.0, family.max_side / max(canvas_w, canvas_h))
    if shrink < 1.0:  # the whole canvas is scaled down to the family's largest side
        width, height = max(1, round(width * shrink)), max(1, round(height * shrink))
        original = original.resize((width, height), Image.Resampling.LANCZOS)
        canvas_w, canvas_h = round(width * scale[0]), round(height * scale[1])
    left = round((canvas_w - width) * anchor[0])
    top = round((canvas_h - height) * anchor[1])
    right, bottom = left + width, top + height
    pixels = np.asarray(original.convert("RGB"))
    padded = np.pad(
        pixels, ((top, canvas_h - bottom), (left, canvas_w - right), (0, 0)), mode="edge"
    )  # the new area starts as the stretched edge: a hint of the colours, repainted anyway
    band = blend_band(width, height)
    kept = (
        left + (band if left > 0 else 0),
        top + (band if top > 0 else 0),
        right - (band if right < canvas_w else 0),
        bottom - (band if bottom < canvas_h else 0),
    )
    mask = Image.new("L", (canvas_w, canvas_h), 255)
    ImageDraw.Draw(mask).rectangle((kept[0], kept[1], kept[2] - 1, kept[3] - 1), fill=0)
    return Canvas(
        image=_png(Image.fromarray(padded, "RGB")),
        mask=_png(mask),
        size=(canvas_w, canvas_h),
        placed=(left, top, right, bottom),
        kept=kept,
        band=band,
    )


def _open(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
