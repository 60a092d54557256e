"""Model families: native resolution, size rules, aspect-ratio sizes and what each family accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FamilyName = Literal["sd15", "sdxl", "flux", "sd3"]
ASPECTS: tuple[str, ...] = ("1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16", "21:9")

# The buckets SDXL was trained on; Flux and SD 3.5 work around one megapixel with the same
# shapes (each side a multiple of 64, so of 16 too).
_MEGAPIXEL_BUCKETS = {
    "1:1": (1024, 1024),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "4:3": (1152, 896),
    "3:4": (896, 1152),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "21:9": (1536, 640),
}


@dataclass(frozen=True)
class Family:
    name: FamilyName
    label: str  # how people call it ("SD 1.5", "Flux.1")
    native: int  # the resolution the family was trained at (square side)
    min_side: int
    max_side: int
    # Sizes at the native resolution; a model with another native size gets them scaled.
    aspect_sizes: dict[str, tuple[int, int]]
    default_steps: int
    default_guidance: float
    multiple: int = 8  # width and height must be multiples of this (latent scale x patch size)
    flow: bool = False  # a flow-matching transformer (Flux, SD3): its own sampler
    samplers: tuple[str, ...] = ("dpmpp_2m", "euler", "euler_a", "ddim")
    default_sampler: str = "dpmpp_2m"
    negative_prompt: bool = True  # False: guidance-distilled, no negative prompt unless true CFG
    weighting: bool = True  # prompt weighting through compel


FAMILIES: dict[str, Family] = {
    "sd15": Family(
        name="sd15",
        label="SD 1.5",
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
        label="SDXL",
        native=1024,
        min_side=32,
        max_side=2048,
        aspect_sizes=_MEGAPIXEL_BUCKETS,
        default_steps=30,
        default_guidance=6.0,
    ),
    "flux": Family(
        name="flux",
        label="Flux.1",
        native=1024,
        min_side=32,
        max_side=2048,
        aspect_sizes=_MEGAPIXEL_BUCKETS,
        default_steps=28,  # dev; schnell's catalogue entry says 4
        default_guidance=3.5,  # embedded guidance (dev); schnell ignores it
        multiple=16,
        flow=True,
        samplers=("euler",),
        default_sampler="euler",
        negative_prompt=False,
    ),
    "sd3": Family(
        name="sd3",
        label="SD 3.5",
        native=1024,
        min_side=32,
        max_side=2048,
        aspect_sizes=_MEGAPIXEL_BUCKETS,
        default_steps=28,
        default_guidance=4.5,
        multiple=16,
        flow=True,
        samplers=("euler",),
        default_sampler="euler",
        weighting=False,  # compel has no SD3 encoder
    ),
}


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(value / multiple + 0.5) * multiple)


def aspect_size(family: Family, aspect: str, native: int | None = None) -> tuple[int, int]:
    """The (width, height) for ``aspect`` on a model whose native square side is ``native``."""
    width, height = family.aspect_sizes[aspect]
    scale = (native or family.native) / family.native
    return _round_to(width * scale, family.multiple), _round_to(height * scale, family.multiple)
