"""Refining a result: reroll, variations, remix (a clone with edits), favourites and lineage.

Reroll, vary and clone are prepared here into a ``GenerationPlan`` (ownership or visibility
checked, then everything every generation passes) and started by ``Generations.start``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from studio.artifacts import ArtifactStore, digest
from studio.entities import Generation, ImageRecord, Post, Requester
from studio.errors import NotFound, NotYours
from studio.generations import GenerationPlan, Generations
from studio.recipe import Recipe
from studio.store import Store

VARIATION_STRENGTH = 0.35  # low: variations keep the composition


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
        self, requester: Requester, generation_id: str, index: int, strength: float = VARIATION_STRENGTH
    ) -> GenerationPlan:
        """Variations of image ``index``: img2img from it at low strength, with new seeds."""
        original = await self._owned(requester, generation_id)
        image = await self.store.image_at(generation_id, index)
        png = await self.artifacts.read(image.artifact)
        recipe = original.recipe.model_copy(
            update={
                "seed": secrets.randbits(32),
                "init_image": digest(png),
                "strength": strength,
                "mask": None,
                "parent_image": image.id,
            }
        )
        project = await self.store.get_project(original.project_id)
        plan = GenerationPlan(
            requester, Recipe.model_validate(recipe.model_dump()), project, png, private=original.private
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
