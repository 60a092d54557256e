"""Model families: native resolution, size limits and the aspect-ratio size tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FamilyName = Literal["sd15", "sdxl"]
ASPECTS: tuple[str, ...] = ("1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16", "21:9")


@dataclass(frozen=True)
class Family:
    name: FamilyName
    native: int  # the resolution the family was trained at (square side)
    min_side: int
    max_side: int
    # Sizes at the native resolution; a model with another native size gets them scaled.
    aspect_sizes: dict[str, tuple[int, int]]
    default_steps: int
    default_guidance: float


FAMILIES: dict[str, Family] = {
    "sd15": Family(
        name="sd15",
        native=512,
        min_side=32,
        max_side=1536,
        aspect_sizes={
            "1:1": (512, 512),
            "3:2": (768, 512),
            "2:3": (512, 768),
            "4:3": (680, 512),
            "3:4": (512, 680),
            "16:9": (912, 512),
            "9:16": (512, 912),
            "21:9": (1192, 512),
        },
        default_steps=25,
        default_guidance=7.0,
    ),
    "sdxl": Family(
        name="sdxl",
        native=1024,
        min_side=32,
        max_side=2048,
        # The buckets SDXL was trained on.
        aspect_sizes={
            "1:1": (1024, 1024),
            "3:2": (1216, 832),
            "2:3": (832, 1216),
            "4:3": (1152, 896),
            "3:4": (896, 1152),
            "16:9": (1344, 768),
            "9:16": (768, 1344),
            "21:9": (1536, 640),
        },
        default_steps=30,
        default_guidance=6.0,
    ),
}


def _round8(value: float) -> int:
    return max(8, int(value / 8 + 0.5) * 8)


def aspect_size(family: Family, aspect: str, native: int | None = None) -> tuple[int, int]:
    """The (width, height) for ``aspect`` on a model whose native square side is ``native``."""
    width, height = family.aspect_sizes[aspect]
    scale = (native or family.native) / family.native
    return _round8(width * scale), _round8(height * scale)
