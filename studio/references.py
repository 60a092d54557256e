"""Style and character references (``--sref``/``--cref``): their sources found, checked and made
the recipe's ``references``; the images go to the worker with the job (gpu_worker.ip_adapter).

A source is ``board`` (the mood board of the project the request comes from), ``favourites``
(the person's favourites in that project, else in this server) or a Discord message link: an
Atelier result (its images, if the person may see them) or, through the front end's reader, a
message with image attachments. Attached images (``sref:``/``cref:`` options) add to them. Every
image is checked like an upload (size and pixels from its header, then decoded) before anything
is stored; the family must have an IP-Adapter in the catalogue (``[ip_adapter.<family>]``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from studio.artifacts import ArtifactStore, digest
from studio.catalogue import Catalogue
from studio.entities import Project, Requester
from studio.errors import InvalidRecipe, NotFound, StudioError
from studio.recipe import MAX_REFERENCE_WEIGHT, MAX_REFERENCES, Draft, Recipe, Reference, parse_prompt
from studio.settings import Settings
from studio.store import Store
from studio.uploads import verify_image

if TYPE_CHECKING:
    from studio.generations import GenerationPlan

DEFAULT_WEIGHTS = {"style": 0.6, "character": 0.8}  # IP-Adapter scales: a look, not a copy
FLAGS = {"style": ("--sref", "--sw"), "character": ("--cref", "--cw")}
MESSAGE_LINK = re.compile(
    r"^(?:https?://)?(?:\w+\.)?discord(?:app)?\.com/channels/(?P<guild>\d+|@me)/(?P<channel>\d+)/(?P<message>\d+)/?$"
)
# A front end's reader of a linked message that is no Atelier post: its image attachments' bytes.
LinkReader = Callable[[str], Awaitable[list[bytes]]]


class ReferenceRefused(StudioError):
    pass


@dataclass(frozen=True)
class ReferenceAsk:
    """What a front end gathered besides the prompt's ``--sref``/``--cref`` sources."""

    style: tuple[bytes, ...] = ()  # attached images (the `sref:` option)
    character: tuple[bytes, ...] = ()  # (`cref:`)
    board: bool = False  # the project's board as a style reference (/imagine board:)
    channel_id: str | None = None  # where the request comes from: its project's board and favourites
    read_link: LinkReader | None = None


@dataclass(frozen=True)
class _Found:
    kind: str
    image: bytes


class References:
    def __init__(
        self, settings: Settings, catalogue: Catalogue, store: Store, artifacts: ArtifactStore
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.store = store
        self.artifacts = artifacts

    async def apply(
        self, plan: GenerationPlan, text: str, options: Draft | None, ask: ReferenceAsk | None
    ) -> GenerationPlan:
        """The plan with its references: each source resolved to images, checked, and the recipe
        rebuilt with them (nothing is stored: ``Generations.start`` stores them as .img artifacts)."""
        draft = parse_prompt(text)
        if options is not None:
            draft = draft.merged(options)
        ask = ask or ReferenceAsk()
        sources = {
            "style": (*(("board",) if ask.board else ()), *(draft.sref or ())),
            "character": tuple(draft.cref or ()),
        }
        uploads = {"style": ask.style, "character": ask.character}
        weights = {"style": draft.sw, "character": draft.cw}
        wanted = [kind for kind in sources if sources[kind] or uploads[kind]]
        for kind, weight in weights.items():
            flag, weight_flag = FLAGS[kind]
            if weight is not None and not (math.isfinite(weight) and 0 <= weight <= MAX_REFERENCE_WEIGHT):
                raise InvalidRecipe(
                    weight_flag,
                    f"`{weight_flag}` must be between 0 and {MAX_REFERENCE_WEIGHT:g} (got {weight:g}).",
                )
            if weight is not None and kind not in wanted:
                raise InvalidRecipe(
                    weight_flag, f"`{weight_flag}` weighs the `{flag}` images: give one with it."
                )
        if not wanted:
            return plan
        recipe = plan.recipe
        self._check_family(recipe, wanted)
        found: list[_Found] = []
        for kind in wanted:
            for upload in uploads[kind]:
                found.append(_Found(kind, upload))
            for source in sources[kind]:
                room = MAX_REFERENCES - len(found)
                if room <= 0:
                    break
                images = await self._resolve(plan.requester, kind, source, ask, room)
                found += [_Found(kind, image) for image in images]
        if len(found) > MAX_REFERENCES:
            raise ReferenceRefused(
                f"At most {MAX_REFERENCES} reference images (--sref, --cref) in one recipe."
            )
        limits = (self.settings.max_upload_bytes, self.settings.max_upload_pixels)
        for item in found:
            await asyncio.to_thread(verify_image, item.image, *limits)
        references = tuple(
            Reference(
                kind=item.kind,  # type: ignore[arg-type]
                image=digest(item.image),
                weight=weights[item.kind] if weights[item.kind] is not None else DEFAULT_WEIGHTS[item.kind],
            )
            for item in found
        )
        rebuilt = Recipe.model_validate({**recipe.model_dump(), "references": references})
        return dataclasses.replace(plan, recipe=rebuilt, references=tuple(item.image for item in found))

    def _check_family(self, recipe: Recipe, wanted: list[str]) -> None:
        model = self.catalogue.get(recipe.model)
        config = self.catalogue.ip_adapters.get(recipe.family)
        label = model.family_spec.label
        if config is None:
            raise ReferenceRefused(
                f"{label} models take no reference images (--sref, --cref, board:) here: no IP-Adapter is "
                "configured for them; choose another model"
                + (", or use board_start: to start from the board's collage." if "style" in wanted else ".")
            )
        if "character" in wanted and config.character is None:
            raise ReferenceRefused(
                f"{label} models take no character references (--cref) here: their IP-Adapter has no "
                "character adapter configured; use --sref for a style reference."
            )

    async def _resolve(
        self, requester: Requester, kind: str, source: str, ask: ReferenceAsk, room: int
    ) -> list[bytes]:
        flag = FLAGS[kind][0]
        word = source.strip().lower()
        if word == "board":
            project = await self._project(ask, "The mood board")
            items = await self.store.board(project.id)
            if not items:
                raise NotFound("This project's mood board is empty: add images with /moodboard add.")
            return [await self.artifacts.read(item.artifact, ".img") for item in items[:room]]
        if word in ("favourites", "favorites"):
            project_id = None
            if ask.channel_id is not None:
                here = await self.store.project_by_thread(ask.channel_id)
                project_id = here.id if here is not None else None
            found = [
                image
                for image in await self.store.favourites_of(requester.id, project_id)
                if image.in_scope(requester)
            ]
            if not found:
                where = "in this project" if project_id else "here"
                raise NotFound(f"You have no favourites {where} yet: react ⭐ to an image to add it.")
            return [await self.artifacts.read(image.artifact) for image in found[-room:]]
        link = MESSAGE_LINK.match(source.strip())
        if link is None:
            raise InvalidRecipe(
                flag, f"`{flag}` takes `board`, `favourites` or a message link (got `{source[:80]}`)."
            )
        if link["guild"] != (requester.server or "@me"):
            raise ReferenceRefused(
                "That link points to another server; I can only use messages from this one."
            )
        post = await self.store.post(link["message"])
        if post is not None:  # an Atelier result: its images, if this person may see them
            images = [
                image
                for image in await self.store.images_of(post.generation_id)
                if image.visible_to(requester)
            ]
            if post.image_index is not None:
                images = [image for image in images if image.index == post.image_index]
            if not images:
                raise NotFound("That image does not exist.")
            return [await self.artifacts.read(image.artifact) for image in images[:room]]
        if ask.read_link is None:
            raise ReferenceRefused("That link is not to an Atelier image; attach the image instead.")
        linked = await ask.read_link(source.strip())
        if not linked:
            raise ReferenceRefused("That message has no image to use as a reference.")
        return linked[:room]

    async def _project(self, ask: ReferenceAsk, what: str) -> Project:
        project = await self.store.project_by_thread(ask.channel_id) if ask.channel_id is not None else None
        if project is None:
            raise ReferenceRefused(f"{what} is a project's: use it inside an Atelier project thread.")
        return project

    async def images_of(self, recipe: Recipe) -> list[bytes]:
        """A recipe's reference images from the artifacts (a job queued again)."""
        return [await self.artifacts.read(reference.image, ".img") for reference in recipe.references]
