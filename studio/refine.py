"""Refining a result: reroll, variations, remix (a clone with edits), favourites and lineage.

Reroll, vary and clone are prepared here into a ``GenerationPlan`` (ownership or visibility
checked, then everything every generation passes) and started by ``Generations.start``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import secrets
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from studio.artifacts import ArtifactStore, digest
from studio.entities import Generation, ImageRecord, Post, Requester
from studio.errors import NotFound, NotYours, StudioError
from studio.generations import GenerationPlan, Generations
from studio.outpaint import OUTPAINT_STRENGTH, Direction, pan_canvas, zoom_canvas, zoom_edit
from studio.recipe import Recipe
from studio.store import Store

VARIATION_STRENGTH = 0.35  # low: variations keep the composition
# Vary (Subtle) and Vary (Strong) on a single image: img2img strengths, unless /settings says others.
VARY_SUBTLE, VARY_STRONG = 0.25, 0.65
VARY_LOOKBACK = 100  # recent generations searched for earlier presses of a Vary button
SINGLE_IMAGE_ONLY = (
    "Vary, Zoom Out and pan work on a single image: press U under the grid, "
    "then use the buttons under that image."
)


@dataclass(frozen=True)
class LineageStep:
    image: ImageRecord
    remixes: int  # images made from this one
    posts: list[Post]  # where it was shown
    hidden: bool = False  # a private ancestor: shown only as "private"
    elsewhere: bool = False  # an ancestor from another server: shown only as that, with no link
    removed: bool = False  # its parent was removed (moderation, /forget): ``image`` is the child


class Refine:
    def __init__(self, store: Store, artifacts: ArtifactStore, generations: Generations) -> None:
        self.store = store
        self.artifacts = artifacts
        self.generations = generations

    # Reroll, vary, clone: prepared here, started by Generations.start

    async def prepare_reroll(self, requester: Requester, generation_id: str) -> GenerationPlan:
        """The same recipe again with new seeds, in the same project: its owner only."""
        original = await self._owned(requester, generation_id)
        recipe = original.recipe.model_copy(update={"seed": secrets.randbits(32)})
        init = mask = None
        if recipe.init_image is not None:
            init = await self.artifacts.read(recipe.init_image, ".img")
        if recipe.mask is not None:
            mask = await self.artifacts.read(recipe.mask)
        project = await self.store.get_project(original.project_id)
        plan = GenerationPlan(requester, recipe, project, init, mask, original.private)
        await self.generations.check(plan)
        return plan

    async def prepare_vary(
        self,
        requester: Requester,
        generation_id: str,
        index: int,
        strength: float = VARIATION_STRENGTH,
        edit: str | None = None,
        seeds: int | None = None,
    ) -> GenerationPlan:
        """Variations of image ``index``: img2img from it at low strength, with new seeds
        (``seeds``: the first of them, else random)."""
        original = await self._owned(requester, generation_id)
        image = await self.store.image_at(generation_id, index)
        png = await self.artifacts.read(image.artifact)
        # At least one denoising step: diffusers runs int(steps x strength) of them, and none fails.
        strength = min(1.0, max(strength, 1 / original.recipe.steps))
        recipe = original.recipe.model_copy(
            update={
                "seed": secrets.randbits(32) if seeds is None else seeds,
                "init_image": digest(png),
                "strength": strength,
                "mask": None,
                "parent_image": image.id,
                "edit": edit,
            }
        )
        project = await self.store.get_project(original.project_id)
        plan = GenerationPlan(
            requester, Recipe.model_validate(recipe.model_dump()), project, png, private=original.private
        )
        await self.generations.check(plan)
        return plan

    # On a single image (the U post): Vary (Subtle/Strong/Region), Zoom Out, pan

    async def check_single_image(self, message_id: str | None) -> None:
        """These edits start from one image: the message must be a posted single image (U)."""
        post = await self.store.post(message_id) if message_id else None
        if post is None or post.kind != "image":
            raise StudioError(SINGLE_IMAGE_ONLY)

    async def prepare_vary_intent(
        self, requester: Requester, generation_id: str, index: int, intent: Literal["subtle", "strong"]
    ) -> GenerationPlan:
        """Vary (Subtle) or (Strong): img2img at the server's (or person's) strength for it.

        Seeds follow from the image's seed and how many times this Vary was pressed on it (among
        the person's recent generations): the n-th Subtle and the n-th Strong of an image share
        seeds, so they differ only in strength, and each press is reproducible yet new."""
        defaults = await self.generations.preferences.defaults_for(requester)
        if intent == "subtle":
            strength = defaults.vary_subtle or VARY_SUBTLE
        else:
            strength = defaults.vary_strong or VARY_STRONG
        edit = f"vary ({intent})"
        image = await self.store.image_at(generation_id, index)
        recent = await self.store.list_generations(requester.id, limit=VARY_LOOKBACK)
        presses = sum(1 for g in recent if g.recipe.parent_image == image.id and g.recipe.edit == edit)
        seeds = int.from_bytes(hashlib.sha256(f"vary:{image.seed}:{presses}".encode()).digest()[:4], "big")
        return await self.prepare_vary(requester, generation_id, index, strength, edit=edit, seeds=seeds)

    async def prepare_region(
        self,
        requester: Requester,
        generation_id: str,
        index: int,
        box: str = "",
        *,
        mask: bytes | None = None,
    ) -> GenerationPlan:
        """Vary (Region): the box (``x,y,w,h`` in percent), or a ``mask`` painted at the image's
        size (PNG, white = repaint: the web editor's), repainted as /inpaint does, the rest kept."""
        from studio.finisher import (  # finisher imports this module
            INPAINT_STRENGTH,
            _box_mask,
            checked_mask,
            parse_box,
        )

        area = parse_box(box) if mask is None else None  # a bad box is refused before any read
        original, image, png = await self._own_image(requester, generation_id, index)
        width, height = await asyncio.to_thread(_size, png)
        if mask is not None:
            region = await checked_mask(mask, width, height, self.generations.settings)
        else:
            assert area is not None
            region = await asyncio.to_thread(_box_mask, area, width, height)
        return await self._repaint(
            requester,
            original,
            image,
            png,
            region,
            (width, height),
            INPAINT_STRENGTH,
            "vary (region)",
            keep_control=True,  # same size and framing: its control map still fits
        )

    async def prepare_outpaint(
        self,
        requester: Requester,
        generation_id: str,
        index: int,
        *,
        zoom: float | None = None,
        pan: Direction | None = None,
    ) -> GenerationPlan:
        """Zoom Out (``zoom``: the canvas that many times the image, the image in its centre) or a
        pan (half the image again on that side), the new area outpainted by the inpaint pipeline."""
        original, image, png = await self._own_image(requester, generation_id, index)
        family = self.generations.catalogue.get(original.recipe.model).family_spec
        if zoom is not None:
            canvas = await asyncio.to_thread(zoom_canvas, png, zoom, family)
            edit = zoom_edit(zoom)
        else:
            assert pan is not None
            canvas = await asyncio.to_thread(pan_canvas, png, pan, family)
            edit = f"pan {pan}"
        return await self._repaint(
            requester, original, image, canvas.image, canvas.mask, canvas.size, OUTPAINT_STRENGTH, edit
        )

    async def _own_image(
        self, requester: Requester, generation_id: str, index: int
    ) -> tuple[Generation, ImageRecord, bytes]:
        original = await self._owned(requester, generation_id)
        image = await self.store.image_at(generation_id, index)
        return original, image, await self.artifacts.read(image.artifact)

    async def _repaint(
        self,
        requester: Requester,
        original: Generation,
        image: ImageRecord,
        start: bytes,
        mask: bytes,
        size: tuple[int, int],
        strength: float,
        edit: str,
        keep_control: bool = False,
    ) -> GenerationPlan:
        """An inpaint of ``start`` (white of ``mask`` repainted) with the image's recipe and new
        seeds, in its project, at the family's working size for ``size`` (as /inpaint plans it)."""
        from studio.finisher import _working_size

        family = self.generations.catalogue.get(original.recipe.model).family_spec
        work_w, work_h = _working_size(size[0], size[1], family)
        recipe = original.recipe.model_copy(
            update={
                "seed": secrets.randbits(32),
                "init_image": digest(start),
                "strength": strength,
                "mask": digest(mask),
                "width": work_w,
                "height": work_h,
                "aspect": None,
                "tile": False,  # a tile's wrap means nothing on a larger canvas
                # A larger canvas: the control map (the original's size and framing) no longer fits.
                "control": original.recipe.control if keep_control else None,
                "parent_image": image.id,
                "edit": edit,
            }
        )
        project = await self.store.get_project(original.project_id)
        plan = GenerationPlan(
            requester,
            Recipe.model_validate(recipe.model_dump()),
            project,
            start,
            mask,
            private=original.private,
        )
        await self.generations.check(plan)
        return plan

    async def prepare_clone(self, requester: Requester, image: ImageRecord, text: str) -> GenerationPlan:
        """A remix: the image's recipe (its prompt text as edited), linked to it. Its project is
        the remixer's new one, given to ``start``."""
        recipe = self.generations.recipe(text).model_copy(update={"parent_image": image.id})
        plan = GenerationPlan(requester, Recipe.model_validate(recipe.model_dump()))
        await self.generations.check(plan)
        return plan

    async def remixable(self, requester: Requester, generation_id: str, index: int) -> ImageRecord:
        """An image the requester may clone: their own, or public in their server; others don't exist."""
        image = await self.store.image_at(generation_id, index)
        if not image.visible_to(requester):
            raise NotFound("That image does not exist.")
        return image

    @staticmethod
    def remix_text(image: ImageRecord) -> str:
        """The image's recipe as prompt text to edit (a remix starts from text, not the init image)."""
        return image.recipe.model_copy(update={"strength": None, "init_image": None}).to_prompt_text()

    async def _owned(self, requester: Requester, generation_id: str) -> Generation:
        refused = NotYours("Only the person who made these images can do that.")
        return await self.generations.owned(requester, generation_id, refused)

    # Favourites

    async def set_favourite(
        self, requester: Requester, generation_id: str, index: int, on: bool
    ) -> ImageRecord:
        image = await self.store.image_at(generation_id, index)
        if not image.public and image.owner_id != requester.id:
            raise NotFound("That image does not exist.")
        # Not scoped: a favourite is given on a message, which only that server's members see.
        await self.store.ensure_user(requester.id, requester.name)
        await self.store.set_favourite(requester.id, image.id, on)
        return image

    async def favourites(self, requester: Requester, project_id: str | None = None) -> list[ImageRecord]:
        """The person's favourites made in the server they ask from (links elsewhere would not open)."""
        found = await self.store.favourites_of(requester.id, project_id)
        return [image for image in found if image.in_scope(requester)]

    # Lineage

    async def lineage(self, requester: Requester, generation_id: str, index: int) -> list[LineageStep]:
        """Image ``index`` of a generation and its ancestors back to the original, with remix counts.

        Another person's private image, or one of another server, is refused as if it did not
        exist. Ancestors are judged one by one: a private one is shown only as "private", one made
        in another server only as "from another server" (no prompt, credit or link); either ends
        the chain. Posts (jump links) are given only for images of the requester's server, and
        remix counts are global (a count shows nothing of another server).
        """
        image = await self.store.image_at(generation_id, index)
        if not image.visible_to(requester):
            raise NotFound("That image does not exist.")
        chain = await self.store.ancestry(image.id)
        steps = []
        for link in chain:
            if not link.public and link.owner_id != requester.id:
                steps.append(LineageStep(link, 0, [], hidden=True))
                break  # a private ancestor ends what others may see
            if not link.in_scope(requester) and link is not chain[0]:
                steps.append(LineageStep(link, 0, [], elsewhere=True))
                break  # so does one from another community
            posts = await self.store.posts_of(link.generation_id) if link.in_scope(requester) else []
            steps.append(LineageStep(link, await self.store.remix_count(link.id), posts))
        else:
            if await self.store.removal.parent_removed(chain[-1].id):
                steps.append(LineageStep(chain[-1], 0, [], removed=True))
        return steps


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        return image.size
