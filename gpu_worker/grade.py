"""Colour grading and effects (studio.finishing.Grade) on RGB pixels, and a before/after preview.

A preset is a ``Look``: slider values that are added to the grade's own sliders, plus a few
effects that have no slider (black and white, faded blacks, split toning, muted greens). The
work is numpy float32 in display (sRGB-ish) values; blur and sharpening are Pillow's C filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from studio.finishing import GRADE_PRESETS, GRADE_SLIDERS, Grade

Pixels = npt.NDArray[np.float32]  # H x W x 3, 0..1 (values may stray outside until the end)
RGB = tuple[float, float, float]

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # Rec. 709
GAMMA = 2.2


@dataclass(frozen=True)
class Look:
    """A preset: offsets to the grade's sliders (by name, the same units) and the effects that
    have no slider."""

    offsets: Mapping[str, float] = field(default_factory=dict)
    mono: bool = False  # black and white
    black: float = 0.0  # raised black point (faded film), 0..1 of the range
    white: float = 1.0  # lowered white point
    shadows: RGB = (0.0, 0.0, 0.0)  # split toning: added to the darks...
    highlights: RGB = (0.0, 0.0, 0.0)  # ...and to the lights
    mute_greens: float = 0.0  # share of the saturation taken from green areas


LOOKS: dict[str, Look] = {
    "warm": Look({"temperature": 30, "saturation": 10}),
    "cool": Look({"temperature": -30, "tint": -5, "contrast": 5}, black=0.04),
    "teal-orange": Look(
        {"contrast": 12, "saturation": 8}, shadows=(-0.06, 0.02, 0.07), highlights=(0.08, 0.02, -0.07)
    ),
    "noir": Look({"contrast": 45, "vignette": 40}, mono=True),
    "vintage": Look(
        {"temperature": 20, "saturation": -30, "contrast": -10, "grain": 18}, black=0.10, white=0.95
    ),
    "film": Look({"contrast": 15, "saturation": -5, "grain": 8}, black=0.02, mute_greens=0.4),
}
if LOOKS.keys() != GRADE_PRESETS.keys():
    raise RuntimeError("every grade preset of studio.finishing needs a look here")
if any(name not in GRADE_SLIDERS for look in LOOKS.values() for name in look.offsets):
    raise RuntimeError("a look's offsets name the sliders of studio.finishing.Grade")
IDENTITY = Look()


def settings_for(grade: Grade, look: Look) -> dict[str, float]:
    """The grade's sliders with the preset's offsets added, each clamped to its range."""
    return {
        name: min(slider.high, max(slider.low, value + float(look.offsets.get(name, 0.0))))
        for (name, slider), value in zip(GRADE_SLIDERS.items(), grade.sliders.values(), strict=True)
    }


def apply_grade(image: Image.Image, grade: Grade) -> Image.Image:
    """The graded image: RGB, the same size. The identity grade returns the pixels unchanged."""
    rgb = image.convert("RGB")
    if grade.is_identity:
        return rgb.copy()  # convert() may hand back the caller's own object
    look = LOOKS[grade.preset] if grade.preset else IDENTITY
    values = settings_for(grade, look)
    if values["blur"] > 0:
        rgb = rgb.filter(ImageFilter.GaussianBlur(values["blur"]))
    if values["sharpen"] > 0:
        rgb = rgb.filter(ImageFilter.UnsharpMask(radius=2, percent=round(values["sharpen"] * 2), threshold=2))
    x = np.asarray(rgb, dtype=np.float32) / np.float32(255)
    x = _light(x, values["exposure"], values["temperature"], values["tint"])
    x = _split_tone(x, look.shadows, look.highlights)
    x = _contrast(x, values["contrast"] / 100)
    x = _saturation(x, -1.0 if look.mono else values["saturation"] / 100, look.mute_greens)
    x = _fade(x, look.black, look.white)
    x = _vignette(x, values["vignette"] / 100)
    x = _grain(x, values["grain"] / 100, grade.seed)
    return Image.fromarray(_to_uint8(x), "RGB")


def _luma(x: Pixels) -> Pixels:
    return np.asarray(x @ LUMA, dtype=np.float32)


def _light(x: Pixels, exposure: float, temperature: float, tint: float) -> Pixels:
    """Exposure and white balance: channel gains in linear light.

    With a pure power gamma, a gain g in linear light is a gain g**(1/2.2) on display values,
    so no round trip through linear is needed (clipping happens once, at the end).
    """
    if exposure == 0 and temperature == 0 and tint == 0:
        return x
    t, m = temperature / 100, tint / 100
    balance = np.array([1 + 0.25 * t + 0.15 * m, 1 - 0.3 * m, 1 - 0.25 * t + 0.15 * m], dtype=np.float32)
    balance /= float(balance @ LUMA)  # white balance alone keeps the brightness
    gains = (balance * np.float32(2.0**exposure)) ** np.float32(1 / GAMMA)
    return x * gains


def _split_tone(x: Pixels, shadows: RGB, highlights: RGB) -> Pixels:
    if not any(shadows) and not any(highlights):
        return x
    lum = np.clip(_luma(x), 0, 1)[..., None]
    dark = (1 - lum) ** 2
    return x + dark * np.array(shadows, dtype=np.float32) + (lum * lum) * np.array(highlights, np.float32)


def _contrast(x: Pixels, amount: float) -> Pixels:
    """Positive: blend towards a smoothstep S-curve (no clipped ends); negative: flatten to grey."""
    if amount == 0:
        return x
    if amount < 0:
        return (x - 0.5) * np.float32(1 + amount) + np.float32(0.5)
    x = np.clip(x, 0, 1)
    curve = x * x * (3 - 2 * x)
    return x + np.float32(amount) * (curve - x)


def _saturation(x: Pixels, amount: float, mute_greens: float) -> Pixels:
    if amount == 0 and mute_greens == 0:
        return x
    lum = _luma(x)[..., None]
    keep: Pixels | np.float32 = np.float32(1 + amount)
    if mute_greens > 0:
        greenness = np.clip((x[..., 1:2] - np.maximum(x[..., 0:1], x[..., 2:3])) * 4, 0, 1)
        keep = keep * (1 - np.float32(mute_greens) * greenness)
    return lum + (x - lum) * keep


def _fade(x: Pixels, black: float, white: float) -> Pixels:
    if black == 0 and white == 1:
        return x
    return np.float32(black) + np.clip(x, 0, 1) * np.float32(white - black)


def _vignette(x: Pixels, amount: float) -> Pixels:
    """Darken towards the corners: an elliptical falloff that leaves the middle third alone."""
    if amount == 0:
        return x
    height, width = x.shape[:2]
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    distance = np.sqrt((xs * xs + ys * ys) / 2)  # 0 in the middle, 1 in the corners
    ramp = np.clip((distance - 0.35) / 0.65, 0, 1)
    mask = (1 - np.float32(0.75 * amount) * ramp * ramp * (3 - 2 * ramp)).astype(np.float32, copy=False)
    return x * mask[..., None]


def _grain(x: Pixels, amount: float, seed: int) -> Pixels:
    """Monochrome gaussian grain, strongest in the midtones, the same for the same seed and size."""
    if amount == 0:
        return x
    noise = np.random.default_rng(seed).standard_normal(x.shape[:2], dtype=np.float32)
    lum = np.clip(_luma(x), 0, 1)
    weight = 0.35 + 2.6 * lum * (1 - lum)
    return x + (noise * weight * np.float32(0.12 * amount))[..., None]


def _to_uint8(x: Pixels) -> npt.NDArray[np.uint8]:
    x = np.clip(x, 0, 1)
    x *= 255
    x += 0.5
    return x.astype(np.uint8)


def before_after(original: Image.Image, graded: Image.Image) -> Image.Image:
    """The two side by side, a thin divider between them, labelled "before" and "after"."""
    after = graded.convert("RGB")
    before = original.convert("RGB")
    if before.size != after.size:
        before = before.resize(after.size, Image.Resampling.LANCZOS)
    width, height = after.size
    divider = max(2, width // 256)
    sheet = Image.new("RGB", (2 * width + divider, height), (255, 255, 255))
    sheet.paste(before, (0, 0))
    sheet.paste(after, (width + divider, 0))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(10, min(width, height) // 24))
    pad = max(2, min(width, height) // 96)
    for left, label in ((0, "before"), (width + divider, "after")):
        box = draw.textbbox((left + 3 * pad, 2 * pad), label, font=font)
        draw.rounded_rectangle(
            (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), radius=pad, fill=(0, 0, 0)
        )
        draw.text((left + 3 * pad, 2 * pad), label, font=font, fill=(255, 255, 255))
    return sheet
