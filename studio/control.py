"""Structure control (ControlNet) for a generation: checked, then its control map made.

A person gives an image and a mode (``/imagine control:``, the API's ``control_image``). Before
anything is queued the catalogue must have a ControlNet for that mode and the model's family (else
one sentence naming what the operator should add) and strength/start/end must be in range. The
map is then derived on the post worker (``control_map`` job: canny edges, scribble, line art; no
weights) or, for depth and pose, by the mode's annotator model on an inference worker
(``annotate`` job, gpu_worker.annotators), recorded in the recipe by digest (``Control.map``) and
sent with the generate job.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from studio import jobs
from studio.artifacts import digest
from studio.catalogue import Catalogue
from studio.controlnets import ANNOTATED_MODES
from studio.errors import InvalidRecipe
from studio.families import FAMILIES
from studio.recipe import CONTROL_MODES, Control, Recipe
from studio.settings import Settings
from studio.uploads import for_worker, verify_image

if TYPE_CHECKING:
    from studio.generations import GenerationPlan
    from studio.queue import JobQueue


@dataclass(frozen=True)
class ControlAsk:
    """What a person asked for: the control source image and how it should steer (None: defaults)."""

    image: bytes
    mode: str = "canny"
    strength: float | None = None
    start: float | None = None
    end: float | None = None


def control_for(catalogue: Catalogue, recipe: Recipe, ask: ControlAsk) -> Control:
    """The recipe's control (its map not made yet), or one sentence: a mode without a ControlNet for
    the model's family, a value out of range, or control combined with an init image."""
    mode = ask.mode.strip().lower()
    if mode not in CONTROL_MODES:
        raise InvalidRecipe(
            "control_mode", f"Control mode must be one of {', '.join(CONTROL_MODES)} (got {ask.mode[:40]})."
        )
    label = FAMILIES[recipe.family].label
    entry = catalogue.controlnets.get((recipe.family, mode))
    if entry is None:
        raise InvalidRecipe(
            "control_mode",
            f"No {mode} ControlNet is configured for {label} models here; ask the operator to add one "
            "(see README).",
        )
    if mode in ANNOTATED_MODES and entry.annotator is None:
        raise InvalidRecipe(
            "control_mode",
            f"The {mode} ControlNet for {label} models has no annotator configured to make {mode} "
            "maps; use canny, scribble or lineart, or ask the operator (see README).",
        )
    if recipe.init_image is not None:
        raise InvalidRecipe(
            "control",
            "`control:` starts from the prompt; it cannot be combined with an init image or a board.",
        )
    control = Control(
        mode=mode,
        image="0" * 64,  # the source's digest, set once the upload is verified
        strength=1.0 if ask.strength is None else ask.strength,
        start=0.0 if ask.start is None else ask.start,
        end=1.0 if ask.end is None else ask.end,
    )
    Recipe.model_validate(
        {**recipe.model_dump(), "control": control.model_dump()}
    )  # one sentence if out of range
    return control


class Controls:
    def __init__(self, settings: Settings, catalogue: Catalogue, queue: JobQueue) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.queue = queue

    async def apply(self, plan: GenerationPlan, ask: ControlAsk) -> GenerationPlan:
        """The plan with its control: checked (nothing is queued on a refusal), the upload verified,
        the map made by a post worker; the source and the map are stored when the plan starts."""
        control = control_for(self.catalogue, plan.recipe, ask)
        await asyncio.to_thread(
            verify_image, ask.image, self.settings.max_upload_bytes, self.settings.max_upload_pixels
        )
        recipe = plan.recipe
        payload = jobs.ControlMapJob(
            image=await asyncio.to_thread(for_worker, ask.image),
            mode=control.mode,
            width=recipe.width,
            height=recipe.height,
            family=recipe.family,
        )
        if control.mode in ANNOTATED_MODES:  # an annotator model, where the models live
            result: jobs.PngResult = await self.queue.run(
                jobs.ANNOTATE_SPEC,
                payload,
                timeout=self.settings.describe_timeout_s,
                what=f"The {control.mode} map",
                user_facing=frozenset({"AnnotatorRefused"}),
            )
        else:
            result = await self.queue.run(
                jobs.CONTROL_MAP_SPEC,
                payload,
                timeout=self.settings.grid_timeout_s,
                what="The control map",
                user_facing=frozenset({"ValueError"}),
            )
        control = control.model_copy(update={"image": digest(ask.image), "map": digest(result.png)})
        recipe = Recipe.model_validate({**recipe.model_dump(), "control": control.model_dump()})
        return dataclasses.replace(plan, recipe=recipe, control_image=ask.image, control_map=result.png)
