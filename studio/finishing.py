"""Finishing as a domain: grading settings, export presets and specs, upscale factors.

Pure values with their bounds; the pixel work lives in ``gpu_worker`` (post and inference
workers). A value out of bounds is refused here with a sentence, before anything is queued.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from studio.errors import InvalidRecipe

GRADE_PRESETS: dict[str, str] = {
    "warm": "golden, sunny: warmer white balance, a touch more saturation",
    "cool": "crisp, wintry: cooler white balance, slightly lifted shadows",
    "teal-orange": "cinematic: teal shadows, orange highlights and skin",
    "noir": "black and white, strong contrast, a soft vignette",
    "vintage": "faded blacks, warm cast, lower saturation, light grain",
    "film": "gentle S-curve, muted greens, fine grain",
}


@dataclass(frozen=True)
class Slider:
    """One grade adjustment: its range and its words. Each Grade slider field is annotated with one."""

    low: float
    high: float
    meaning: str  # the API's description, and the sentence when a value is out of range
    short: str = ""  # the /grade option's description, when it is not ``meaning``
    signed: bool = False  # an offset either way (captions show +/-), not an amount from 0

    @property
    def hint(self) -> str:
        return self.short or self.meaning


class Grade(BaseModel):
    """A grade: an optional preset, then the adjustments on top of it (0 changes nothing).

    The sliders are declared here once, each a float field with its ``Slider``; the API's
    fields, the /grade options, the Adjust form, the captions and the worker follow GRADE_SLIDERS.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: str | None = None
    exposure: Annotated[
        float, Slider(-3.0, 3.0, "stops of light, -3 to 3", "Stops, -3 to 3", signed=True)
    ] = 0.0
    contrast: Annotated[
        float, Slider(-100.0, 100.0, "percent, -100 (flat) to 100", "-100 to 100", signed=True)
    ] = 0.0
    saturation: Annotated[
        float, Slider(-100.0, 100.0, "percent, -100 (grey) to 100", "-100 to 100", signed=True)
    ] = 0.0
    temperature: Annotated[float, Slider(-100.0, 100.0, "-100 (blue) to 100 (amber)", signed=True)] = 0.0
    tint: Annotated[float, Slider(-100.0, 100.0, "-100 (green) to 100 (magenta)", signed=True)] = 0.0
    grain: Annotated[float, Slider(0.0, 100.0, "film grain strength, 0 to 100", "Film grain, 0 to 100")] = 0.0
    vignette: Annotated[float, Slider(0.0, 100.0, "darkened corners, 0 to 100", "0 to 100")] = 0.0
    sharpen: Annotated[float, Slider(0.0, 100.0, "unsharp mask strength, 0 to 100", "0 to 100")] = 0.0
    blur: Annotated[
        float, Slider(0.0, 20.0, "gaussian blur radius in pixels, 0 to 20", "Radius in pixels, 0 to 20")
    ] = 0.0
    seed: int = 0  # grain is noise: the same seed gives the same grain

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is None:
            return None
        key = value.strip().lower().replace("_", "-").replace(" ", "-")
        if key in ("", "none"):
            return None
        if key not in GRADE_PRESETS:
            raise InvalidRecipe(
                "preset", f"Unknown grade preset `{value}`; choose one of {', '.join(GRADE_PRESETS)}."
            )
        return key

    def model_post_init(self, context: object) -> None:
        for name, slider in GRADE_SLIDERS.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and slider.low <= value <= slider.high):
                raise InvalidRecipe(name, f"`{name}` must be {slider.meaning} (got {value:g}).")
        if not 0 <= self.seed < 2**32:
            raise InvalidRecipe("seed", "The grain seed must be between 0 and 4294967295.")

    @property
    def sliders(self) -> dict[str, float]:
        """Each slider's value, in the order of GRADE_SLIDERS."""
        return {name: float(getattr(self, name)) for name in GRADE_SLIDERS}

    @property
    def is_identity(self) -> bool:
        return self.preset is None and not any(self.sliders.values())


# The sliders by name, in the order they are declared (and shown everywhere).
GRADE_SLIDERS: dict[str, Slider] = {
    name: meta
    for name, field in Grade.model_fields.items()
    for meta in field.metadata
    if isinstance(meta, Slider)
}


ExportFormat = Literal["png", "jpeg", "webp", "avif"]
FORMATS: tuple[ExportFormat, ...] = ("png", "jpeg", "webp", "avif")


@dataclass(frozen=True)
class ExportPreset:
    name: str
    width: int
    height: int
    format: ExportFormat  # the destination's usual format
    description: str
    dpi: int = 72
    max_kb: int | None = None  # the destination's own file-size limit, if it has one


EXPORT_PRESETS: dict[str, ExportPreset] = {
    p.name: p
    for p in (
        ExportPreset("instagram-square", 1080, 1080, "jpeg", "Instagram feed, square 1:1"),
        ExportPreset("instagram-portrait", 1080, 1350, "jpeg", "Instagram feed, portrait 4:5"),
        ExportPreset("instagram-story", 1080, 1920, "jpeg", "Instagram story or reel cover, 9:16"),
        ExportPreset("x-post", 1600, 900, "jpeg", "X (Twitter) post image, 16:9"),
        ExportPreset("linkedin-post", 1200, 627, "jpeg", "LinkedIn shared image, 1.91:1"),
        ExportPreset("linkedin-headshot", 400, 400, "jpeg", "LinkedIn profile photo, square"),
        ExportPreset(
            "youtube-thumbnail", 1280, 720, "jpeg", "YouTube thumbnail, 16:9, under 2 MB", max_kb=2048
        ),
        ExportPreset("discord-emoji", 128, 128, "png", "Discord emoji, under 256 KB", max_kb=256),
        ExportPreset("discord-sticker", 320, 320, "png", "Discord sticker, under 512 KB", max_kb=512),
        ExportPreset("discord-banner", 960, 540, "png", "Discord server banner, 16:9"),
        ExportPreset("print-4x6", 1800, 1200, "png", "Photo print 6x4 in at 300 dpi", dpi=300),
        ExportPreset("print-a4", 2480, 3508, "png", "A4 portrait print at 300 dpi", dpi=300),
    )
}


class ExportSpec(BaseModel):
    """One export: a preset's size, cropped around ``focus`` (percent; None: centre of interest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: str
    format: ExportFormat | None = None  # None: the preset's usual format
    focus_x: float | None = None  # 0-100 percent of the width
    focus_y: float | None = None
    max_kb: int | None = None  # None: the preset's own limit, if any
    keep_metadata: bool = True  # the recipe (A1111 parameters) travels in PNG/WebP/JPEG/AVIF

    def model_post_init(self, context: object) -> None:
        if self.preset not in EXPORT_PRESETS:
            raise InvalidRecipe("preset", f"Unknown export preset `{self.preset}`; see /export presets.")
        for name in ("focus_x", "focus_y"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0 <= value <= 100):
                raise InvalidRecipe(name, f"The focus point is in percent, 0 to 100 (got {value:g}).")
        if (self.focus_x is None) != (self.focus_y is None):
            raise InvalidRecipe("focus", "Give both focus coordinates (x and y), or neither.")
        if self.max_kb is not None and not 8 <= self.max_kb <= 50 * 1024:
            raise InvalidRecipe("max_kb", f"The maximum size is 8 KB to 50 MB (got {self.max_kb} KB).")

    @property
    def target(self) -> ExportPreset:
        return EXPORT_PRESETS[self.preset]

    @property
    def chosen_format(self) -> ExportFormat:
        return self.format or self.target.format

    @property
    def limit_kb(self) -> int | None:
        limits = [kb for kb in (self.max_kb, self.target.max_kb) if kb is not None]
        return min(limits) if limits else None


UPSCALE_FACTORS = (2, 4)
MAX_UPSCALED_SIDE = 8192  # 2048 px at 4x


def check_upscale(factor: int, width: int, height: int) -> None:
    if factor not in UPSCALE_FACTORS:
        raise InvalidRecipe("factor", "Upscaling is 2x or 4x.")
    if max(width, height) * factor > MAX_UPSCALED_SIDE:
        raise InvalidRecipe(
            "factor",
            f"{width}x{height} at {factor}x would be wider than {MAX_UPSCALED_SIDE} px; try 2x, "
            "or export instead.",
        )
