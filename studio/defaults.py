"""Defaults for new generations: per server (admins) and per person, beneath what a prompt says.

Order of precedence, lowest first: model defaults < server defaults < personal defaults <
inline flags < explicit options.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from studio.catalogue import Catalogue
from studio.errors import InvalidRecipe
from studio.fairness import Lane
from studio.families import ASPECTS
from studio.recipe import MAX_BATCH, Draft
from studio.styles import StyleBook

VARY_LEAST = 0.05  # the least a variation strength may be (the /remix floor)


class Defaults(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = None
    aspect: str | None = None
    batch: int | None = None
    style: str | None = None
    private: bool | None = None
    lane: Lane | None = None  # fast, or relax: runs only when no fast job waits (studio.fairness)
    vary_subtle: float | None = None  # Vary (Subtle)'s img2img strength (studio.refine.VARY_SUBTLE)
    vary_strong: float | None = None  # Vary (Strong)'s (studio.refine.VARY_STRONG)
    previews: bool | None = None  # servers only: live previews on status messages (default on)

    def as_draft(self) -> Draft:
        return Draft(model=self.model, aspect=self.aspect, batch=self.batch, style=self.style)

    def merged(self, override: Defaults) -> Defaults:
        return self.model_copy(update={k: v for k, v in override.model_dump().items() if v is not None})

    def describe(self) -> str:
        said = [f"{key} {value}" for key, value in self.model_dump().items() if value is not None]
        return ", ".join(said) if said else "nothing set"


def validated(defaults: Defaults, catalogue: Catalogue, styles: StyleBook) -> Defaults:
    """The defaults, or InvalidRecipe naming what is wrong (an unknown model or style, ...)."""
    if defaults.model is not None:
        catalogue.get(defaults.model)
    if defaults.style is not None:
        styles.get(defaults.style)
    if defaults.aspect is not None and defaults.aspect not in ASPECTS:
        raise InvalidRecipe(
            "aspect", f"Aspect ratio must be one of {', '.join(ASPECTS)} (got {defaults.aspect})."
        )
    if defaults.batch is not None and not 1 <= defaults.batch <= MAX_BATCH:
        raise InvalidRecipe(
            "batch", f"Batch must be between 1 and {MAX_BATCH} images (got {defaults.batch})."
        )
    for name in ("vary_subtle", "vary_strong"):
        value = getattr(defaults, name)
        if value is not None and not (math.isfinite(value) and VARY_LEAST <= value <= 1):
            raise InvalidRecipe(
                name, f"`{name}` is an img2img strength from {VARY_LEAST:g} to 1 (got {value:g})."
            )
    subtle, strong = defaults.vary_subtle, defaults.vary_strong
    if subtle is not None and strong is not None and subtle >= strong:
        raise InvalidRecipe(
            "vary_subtle", f"`vary_subtle` ({subtle:g}) must be below `vary_strong` ({strong:g})."
        )
    return defaults
