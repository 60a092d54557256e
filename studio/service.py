"""Use cases: the one place that turns a request into stored state and queued work.

Front ends (CLI, Discord bot, REST API) call these and render the outcome; they never touch
SQL, the queue or pixels themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from studio import jobs
from studio.acknowledgements import Acknowledgements
from studio.apikeys import ApiKeys
from studio.artifacts import Artifacts, digest
from studio.catalogue import Catalogue
from studio.defaults import Defaults, validated
from studio.entities import (
    BoardItem,
    Delivery,
    Generation,
    Ideation,
    ImageRecord,
    Post,
    Project,
    Requester,
)
from studio.errors import (
    AlreadyFinished,
    BoardFull,
    GenerationCancelled,
    GenerationFailed,
    InvalidRecipe,
    NotFound,
    NotYours,
    StudioError,
    TooManyJobs,
)
from studio.finisher import Finisher
from studio.forge import Forge
from studio.ideate import GROUPS, Brainstorm, Vocabulary, brainstorm
from studio.outage import QUEUE_AWAY, REDIS_DOWN
from studio.queue import JobQueue, JobResultMissing, failure_reason
from studio.recipe import Draft, Recipe, parse_prompt, resolve
from studio.settings import Settings
from studio.store import Store
from studio.store.repository import new_id
from studio.styles import StyleBook
from studio.training_sets import TrainingSets
from studio.uploads import for_worker, verify_image

log = logging.getLogger(__name__)

ProgressHandler = Callable[[jobs.ProgressEvent], Awaitable[None]]
VARIATION_STRENGTH = 0.35  # low: variations keep the composition
BOARD_STRENGTH = 0.75  # high: a board sets palette and layout, the prompt decides the content
MAX_BOARD = 16
BROWSE_PAGE = 5
MAX_REQUEUES = 3  # a generation whose job vanished from Redis is queued again this often at most
VANISHED_RECHECK_S = 1.0  # a job running with no record left: how often to look for its result
PERIODS: dict[str, float] = {"day": 86400.0, "week": 7 * 86400.0, "month": 30 * 86400.0, "all": 0.0}


@dataclass(frozen=True)
class LineageStep:
    image: ImageRecord
    remixes: int  # images made from this one
    posts: list[Post]  # where it was shown
    hidden: bool = False  # a private ancestor: shown only as "private"
    elsewhere: bool = False  # an ancestor from another server: shown only as that, with no link


@dataclass(frozen=True)
class FeedEntry:
    image: ImageRecord
    favourites: int
    remixes: int
    posts: list[Post]


@dataclass(frozen=True)
class Finished:
    generation: Generation
    images: list[ImageRecord]


class Studio:
    def __init__(
        self,
        settings: Settings,
        catalogue: Catalogue,
        store: Store,
        queue: JobQueue,
        artifacts: Artifacts,
        styles: StyleBook | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.styles = styles or StyleBook({})
        self.vocabulary = vocabulary or Vocabulary({group: () for group in GROUPS})
        self.settings = settings
        self.catalogue = catalogue
        self.store = store
        self.queue = queue
        self.artifacts = artifacts
        self.forge = Forge(settings, catalogue, store, queue, artifacts)
        self.finisher = Finisher(self)
        self.keys = ApiKeys(settings, store)
        self.acknowledged = Acknowledgements(store)
        self.training_sets = TrainingSets(settings, store, artifacts)

    # Generate

    def plan(
        self,
        text: str,
        options: Draft | None = None,
        init_image: str | None = None,
        defaults: Defaults | None = None,
    ) -> Recipe:
        """The recipe a prompt asks for: defaults < inline flags < explicit options."""
        draft = parse_prompt(text)
        if defaults is not None:
            draft = defaults.as_draft().merged(draft)
        if options is not None:
            draft = draft.merged(options)
        return resolve(draft, self.catalogue, secrets.randbits(32), init_image, self.styles)

    async def plan_upload(self, text: str, options: Draft | None, upload: bytes) -> Recipe:
        """The img2img recipe for an upload, once the upload proved a sound image within limits."""
        await asyncio.to_thread(
            verify_image, upload, self.settings.max_upload_bytes, self.settings.max_upload_pixels
        )
        return self.plan(text, options, digest(upload))

    async def check_capacity(self, requester: Requester, adding: int = 1, limit: int | None = None) -> None:
        """Fair use: at most ``max_jobs_per_user`` generations of one person queued or running.

        ``adding`` jobs at once (an API batch) may be checked against another ``limit``.
        """
        limit = limit or self.settings.max_jobs_per_user
        in_flight = await self.store.count_in_flight(requester.id)
        if in_flight + adding > limit:
            raise TooManyJobs(limit)

    async def imagine(
        self,
        requester: Requester,
        text: str,
        options: Draft | None = None,
        project: str | Project = "default",
        init_image: bytes | None = None,
    ) -> Generation:
        """Validate, record and enqueue a generation. Invalid input raises before anything is stored."""
        if init_image is not None:
            recipe = await self.plan_upload(text, options, init_image)
        else:
            recipe = self.plan(text, options)
        return await self.submit(requester, recipe, project, init_image)

    async def submit(
        self,
        requester: Requester,
        recipe: Recipe,
        project: str | Project,
        init_image: bytes | None = None,
        private: bool = False,
        deliver_to: str | None = None,
        mask: bytes | None = None,
        capacity_checked: bool = False,
        limit: int | None = None,
        generation_id: str | None = None,
    ) -> Generation:
        """Record and enqueue a validated recipe (capacity checked first).

        ``deliver_to`` (a channel id) records the promise to deliver the result there before the
        job is queued, so a front end that stops at any moment still delivers it when it is back.
        ``capacity_checked``: the caller checked capacity for a whole batch (check_capacity); each
        of its generations is then held to ``limit`` (the batch's cap), if given.
        Capacity is checked by the insert itself, atomically (TooManyJobs): a separate check
        first could pass for several concurrent submits at once. Front ends may call
        check_capacity earlier, for a friendly answer before they open threads.
        ``generation_id``: chosen by the caller (a recorded Discord command), else a new one.
        """
        cap = limit if capacity_checked else (limit or self.settings.max_jobs_per_user)
        generation_id = generation_id or new_id()
        payload = await self._generate_job(requester, generation_id, recipe, init_image, mask)
        if init_image is not None:  # stored only once everything else is known to be valid
            await asyncio.to_thread(self.artifacts.put, init_image, ".img")
        if mask is not None:
            await asyncio.to_thread(self.artifacts.put, mask)
        await self.store.ensure_user(requester.id, requester.name)
        if isinstance(project, Project):
            project_row = project
        else:
            found = await self.store.project_by_name(requester.id, project)
            project_row = found or await self.store.create_project(
                requester.id, project, server=requester.server
            )
        server = self._server_of(requester, project_row)
        if not await self.store.add_generation(
            generation_id, project_row.id, requester.id, recipe, private, server, limit=cap
        ):
            raise TooManyJobs(cap or self.settings.max_jobs_per_user)
        if deliver_to is not None:
            await self.store.add_delivery(generation_id, deliver_to, None)
        try:
            await self.queue.enqueue(jobs.INFERENCE, jobs.GENERATE, generation_id, payload)
        except BaseException:
            await self.store.delete_generation(generation_id)
            raise
        return await self.store.get_generation(generation_id)

    async def _generate_job(
        self,
        requester: Requester,
        generation_id: str,
        recipe: Recipe,
        init_image: bytes | None,
        mask: bytes | None,
    ) -> dict[str, Any]:
        """A generation's job for the worker: the one builder for submit and for a job queued again.

        Checks the model (catalogue) and the LoRAs (visible to the requester, of the model's
        family), and shares the LoRAs' weights in Redis.
        """
        model = self.catalogue.get(recipe.model)
        adapters = await self.forge.adapters_for(requester, recipe)
        payload = jobs.GenerateJob(
            generation_id=generation_id,
            recipe=recipe.model_dump(mode="json"),
            model=jobs.ModelRef(id=model.id, family=model.family, source=model.source, variant=model.variant),
            init_image=None if init_image is None else await asyncio.to_thread(for_worker, init_image),
            mask=mask,
            adapters=adapters,
        )
        return payload.model_dump()

    async def reroll(
        self,
        requester: Requester,
        generation_id: str,
        deliver_to: str | None = None,
        result_id: str | None = None,
    ) -> Generation:
        """The same recipe again with new seeds, in the same project (``result_id``: its id)."""
        original = await self._owned(requester, generation_id)
        recipe = original.recipe.model_copy(update={"seed": secrets.randbits(32)})
        init = mask = None
        if recipe.init_image is not None:
            init = await asyncio.to_thread(self.artifacts.get, recipe.init_image, ".img")
        if recipe.mask is not None:
            mask = await asyncio.to_thread(self.artifacts.get, recipe.mask)
        project = await self.store.get_project(original.project_id)
        return await self.submit(
            requester, recipe, project, init, original.private, deliver_to, mask, generation_id=result_id
        )

    async def vary(
        self,
        requester: Requester,
        generation_id: str,
        index: int,
        strength: float = VARIATION_STRENGTH,
        deliver_to: str | None = None,
        result_id: str | None = None,
    ) -> Generation:
        """Variations of image ``index``: img2img from it at low strength, with new seeds."""
        original = await self._owned(requester, generation_id)
        image = await self.store.image_at(generation_id, index)
        png = await asyncio.to_thread(self.artifacts.get, image.artifact)
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
        return await self.submit(
            requester,
            Recipe.model_validate(recipe.model_dump()),
            project,
            png,
            original.private,
            deliver_to,
            generation_id=result_id,
        )

    @staticmethod
    def _server_of(requester: Requester, project: Project) -> str | None:
        """The community a new generation belongs to: where it will be shown.

        A project thread lives in one server, so its results belong there (an API key minted in
        another server may still deliver into its owner's thread); otherwise the requester's.
        """
        if project.thread_id is not None and project.server is not None:
            return project.server
        return requester.server

    async def _owned(self, requester: Requester, generation_id: str) -> Generation:
        generation = await self.store.get_generation(generation_id)
        if generation.owner_id != requester.id:
            raise NotYours("Only the person who made these images can do that.")
        return generation

    async def open_project(self, requester: Requester, name: str, thread_id: str | None = None) -> Project:
        await self.store.ensure_user(requester.id, requester.name)
        return await self.store.create_project(requester.id, name, thread_id, requester.server)

    async def project_for_thread(self, thread_id: str) -> Project | None:
        return await self.store.project_by_thread(thread_id)

    async def project_named(self, requester: Requester, name: str) -> Project:
        """The requester's project of that name, made on first use."""
        await self.store.ensure_user(requester.id, requester.name)
        found = await self.store.project_by_name(requester.id, name)
        return found or await self.store.create_project(requester.id, name, server=requester.server)

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

    async def image_at(self, generation_id: str, index: int) -> ImageRecord:
        return await self.store.image_at(generation_id, index)

    async def images_of(self, generation: Generation) -> list[ImageRecord]:
        return await self.store.images_of(generation.id)

    async def image_png(self, image: ImageRecord) -> bytes:
        return await asyncio.to_thread(self.artifacts.get, image.artifact)

    async def grid_png(self, generation: Generation) -> bytes | None:
        if generation.grid_artifact is None:
            return None
        return await asyncio.to_thread(self.artifacts.get, generation.grid_artifact)

    async def sample_of_model(self, requester: Requester, model_id: str) -> bytes | None:
        """The most favoured public image of the requester's server made with a base model, if any."""
        image = await self.store.sample_image(model_id, requester.server)
        return await self.image_png(image) if image is not None else None

    async def generation(self, generation_id: str) -> Generation:
        return await self.store.get_generation(generation_id)

    # Where front ends showed things (message ids), and delivery bookkeeping

    async def record_status_post(self, generation_id: str, channel_id: str, message_id: str) -> None:
        """The message that shows a generation's progress and, in the end, its result."""
        await self.store.add_post(message_id, channel_id, generation_id, "status")
        await self.store.add_delivery(generation_id, channel_id, message_id)
        await self.store.set_status_message(generation_id, channel_id, message_id)

    async def record_share_post(self, generation_id: str, channel_id: str, message_id: str) -> None:
        """A cross-post of a public result in a remix channel."""
        await self.store.add_post(message_id, channel_id, generation_id, "share")

    async def record_image_post(
        self, generation_id: str, index: int, channel_id: str, message_id: str
    ) -> None:
        await self.store.add_post(message_id, channel_id, generation_id, "image", index)

    async def post_for_message(self, message_id: str) -> Post | None:
        return await self.store.post(message_id)

    async def posts_of(self, generation_id: str) -> list[Post]:
        return await self.store.posts_of(generation_id)

    async def mark_delivered(self, generation_id: str) -> bool:
        return await self.store.mark_delivered(generation_id)

    async def undelivered(self) -> list[Delivery]:
        return await self.store.undelivered()

    # Defaults (/settings)

    async def defaults_for(self, requester: Requester) -> Defaults:
        """The server's defaults overlaid with the person's own."""
        server = await self._defaults("server", requester.server) if requester.server else Defaults()
        return server.merged(await self._defaults("user", requester.id))

    async def _defaults(self, scope: str, owner: str) -> Defaults:
        stored = await self.store.defaults(scope, owner)
        return Defaults.model_validate_json(stored) if stored else Defaults()

    async def set_defaults(self, requester: Requester, changes: Defaults, server: bool = False) -> Defaults:
        """Merge ``changes`` into the person's (or, for admins, the server's) defaults."""
        scope, owner = self._defaults_scope(requester, server)
        current = await self._defaults(scope, owner)
        updated = validated(current.merged(changes), self.catalogue, self.styles)
        await self.store.ensure_user(requester.id, requester.name)
        await self.store.set_defaults(scope, owner, updated.model_dump_json(exclude_none=True))
        return updated

    async def reset_defaults(self, requester: Requester, server: bool = False) -> None:
        await self.store.set_defaults(*self._defaults_scope(requester, server), None)

    @staticmethod
    def _defaults_scope(requester: Requester, server: bool) -> tuple[str, str]:
        """Where a change of defaults goes; the server's own only for its admins."""
        if not server:
            return "user", requester.id
        if not (requester.admin and requester.server):
            raise NotYours("Only server admins (Manage Server) can change the server's defaults.")
        return "server", requester.server

    async def stored_defaults(self, requester: Requester, server: bool = False) -> Defaults:
        if server:
            return await self._defaults("server", requester.server) if requester.server else Defaults()
        return await self._defaults("user", requester.id)

    # Community remix

    async def share_channels(self, generation: Generation) -> list[str]:
        """The remix channels a finished generation is cross-posted to: its own server's, and only
        when it is public (another server's channels never get it)."""
        if generation.private or generation.server is None:
            return []
        return await self.store.remix_channels(generation.server)

    async def remix_channels(self, server: str) -> list[str]:
        return await self.store.remix_channels(server)

    async def set_remix_channel(self, requester: Requester, channel_id: str, on: bool) -> list[str]:
        """Mark (or unmark) a channel where public results are cross-posted: server admins only."""
        if not (requester.admin and requester.server):
            raise NotYours("Only server admins (Manage Server) can choose the remix channels.")
        await self.store.ensure_user(requester.id, requester.name)
        await self.store.set_remix_channel(requester.server, channel_id, requester.id, on)
        return await self.store.remix_channels(requester.server)

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

    async def clone(
        self,
        requester: Requester,
        image: ImageRecord,
        text: str,
        project: Project,
        deliver_to: str | None = None,
    ) -> Generation:
        """A remix: the image's recipe (its prompt text as edited) in the remixer's project, linked to it."""
        recipe = self.plan(text).model_copy(update={"parent_image": image.id})
        return await self.submit(
            requester, Recipe.model_validate(recipe.model_dump()), project, deliver_to=deliver_to
        )

    # The community feed

    async def browse(
        self,
        requester: Requester,
        period: str = "week",
        model: str | None = None,
        style: str | None = None,
        page: int = 0,
    ) -> list[FeedEntry]:
        """Top public creations of the requester's server by favourites and remixes, ``BROWSE_PAGE``
        per page. Another server's images never appear (their links would not open for everyone)."""
        if period not in PERIODS:
            raise InvalidRecipe("period", f"Period must be one of {', '.join(PERIODS)}.")
        if model is not None:
            self.catalogue.get(model)
        if style is not None:
            self.styles.get(style)
        since = time.time() - PERIODS[period] if PERIODS[period] else 0.0
        rows = await self.store.top_public_images(
            requester.server, since, model, style and style.lower(), BROWSE_PAGE, max(0, page) * BROWSE_PAGE
        )
        entries = []
        for image, favourites, remixes in rows:
            posts = await self.store.posts_of(image.generation_id)
            entries.append(FeedEntry(image, favourites, remixes, posts))
        return entries

    # Mood boards

    async def board(self, project: Project) -> list[BoardItem]:
        return await self.store.board(project.id)

    async def board_add(self, requester: Requester, project: Project, uploads: list[bytes]) -> int:
        """Add verified images to a project's board; returns how many it holds now."""
        items = await self.store.board(project.id)
        if len(items) + len(uploads) > MAX_BOARD:
            raise BoardFull(MAX_BOARD, len(items))
        for upload in uploads:  # all verified before any is stored: nothing is half-added
            await asyncio.to_thread(
                verify_image, upload, self.settings.max_upload_bytes, self.settings.max_upload_pixels
            )
        await self.store.ensure_user(requester.id, requester.name)
        for upload in uploads:
            sha = await asyncio.to_thread(self.artifacts.put, upload, ".img")
            await self.store.add_board_item(project.id, sha, requester.id)
        return len(items) + len(uploads)

    async def board_remove(self, requester: Requester, project: Project, number: int) -> int:
        items = await self.store.board(project.id)
        if not 1 <= number <= len(items):
            raise NotFound(f"The board has {len(items)} image(s); there is no number {number}.")
        item = items[number - 1]
        if requester.id not in (item.added_by, project.owner_id) and not requester.moderator:
            raise NotYours("Only whoever added that image, the project's owner or a moderator can remove it.")
        await self.store.remove_board_items(project.id, item.id)
        return len(items) - 1

    async def board_clear(self, requester: Requester, project: Project) -> None:
        if requester.id != project.owner_id and not requester.moderator:
            raise NotYours("Only the project's owner or a moderator can clear its board.")
        await self.store.remove_board_items(project.id)

    async def _board_images(self, project: Project) -> list[bytes]:
        items = await self.store.board(project.id)
        if not items:
            raise NotFound("This project's mood board is empty: add images with /moodboard add.")
        return [await asyncio.to_thread(self.artifacts.get, item.artifact, ".img") for item in items]

    async def board_sheet(self, project: Project) -> bytes:
        """The board as one numbered image, composed by a post worker."""
        payload = jobs.BoardSheetJob(images=await self._board_images(project))
        return await self._post_job(jobs.BOARD_SHEET, payload.model_dump(), "The board's sheet")

    async def plan_with_board(
        self, text: str, options: Draft | None, defaults: Defaults | None, project: Project
    ) -> tuple[Recipe, bytes]:
        """A recipe that starts from the board: its images tiled to the recipe's size, as img2img."""
        sized = self.plan(text, options, defaults=defaults)
        images = await self._board_images(project)
        payload = jobs.CollageJob(images=images, width=sized.width, height=sized.height)
        collage = await self._post_job(jobs.COLLAGE, payload.model_dump(), "The board's collage")
        said = (options.strength if options else None) or parse_prompt(text).strength
        with_strength = (options or Draft()).merged(Draft(strength=said or BOARD_STRENGTH))
        return self.plan(text, with_strength, digest(collage), defaults), collage

    async def _post_job(
        self, function: str, payload: dict[str, Any], what: str, job_id: str | None = None
    ) -> bytes:
        """Pixel work on a post worker: its PNG, or a StudioError when none answers or it fails."""
        value = await self.queue.run(
            jobs.POST, function, payload, timeout=self.settings.grid_timeout_s, what=what, job_id=job_id
        )
        return jobs.ComposeGridResult.model_validate(value).png

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
        return steps

    # Ideation

    def ideate(self, concept: str, seed: int | None = None) -> Brainstorm:
        """Keywords in five groups and suggested prompts for a concept (same seed, same ideas)."""
        return brainstorm(concept, secrets.randbits(31) if seed is None else seed, self.vocabulary)

    async def record_ideation(
        self, requester: Requester, project: Project, message_id: str, idea: Brainstorm
    ) -> None:
        await self.store.add_ideation(Ideation(message_id, project.id, requester.id, idea.concept, idea.seed))

    async def _ideation(self, message_id: str) -> Ideation:
        found = await self.store.ideation(message_id)
        if found is None:
            raise NotFound("That brainstorm is no longer known; run /ideate again.")
        return found

    async def shuffle_ideation(self, requester: Requester, message_id: str) -> Brainstorm:
        """New suggestions for a brainstorm: its owner only."""
        found = await self._ideation(message_id)
        if found.owner_id != requester.id:
            raise NotYours("Only the person who started this brainstorm can shuffle it.")
        idea = self.ideate(found.concept)
        await self.store.reseed_ideation(message_id, idea.seed)
        return idea

    async def generate_idea(
        self,
        requester: Requester,
        message_id: str,
        index: int,
        deliver_to: str | None = None,
        result_id: str | None = None,
    ) -> Generation:
        """Generate suggested prompt ``index`` of a brainstorm, in its project (``result_id``: its id)."""
        found = await self._ideation(message_id)
        idea = brainstorm(found.concept, found.seed, self.vocabulary)
        if not 0 <= index < len(idea.prompts):
            raise NotFound("That suggestion does not exist.")
        recipe = self.plan(idea.prompts[index], defaults=await self.defaults_for(requester))
        project = await self.store.get_project(found.project_id)
        return await self.submit(requester, recipe, project, deliver_to=deliver_to, generation_id=result_id)

    async def position(self, generation_id: str) -> int | None:
        return await self.queue.position(jobs.INFERENCE, generation_id)

    async def follow(
        self,
        generation_id: str,
        on_progress: ProgressHandler | None = None,
        outage_limit: float | None = None,
    ) -> Finished:
        """Wait for a generation to end, relay progress, record its images once and return them.

        A Redis outage is waited out (JobQueue.wait); after ``outage_limit`` seconds of one,
        QueueUnavailable (the job goes on, and a later follow or collect records it).
        """

        async def relay(event: jobs.ProgressEvent) -> None:
            if event.type == "started":
                await self.store.mark_running(generation_id, event.attempt)
            if on_progress is not None:
                await on_progress(event)

        while True:
            known = await self.store.get_generation(generation_id)
            if known.is_final:
                return await self._outcome(known)
            try:
                success, value = await self.queue.wait(generation_id, relay, outage_limit=outage_limit)
            except JobResultMissing:
                try:
                    if not await self._requeue_vanished(generation_id):
                        await asyncio.sleep(VANISHED_RECHECK_S)
                except QUEUE_AWAY:
                    pass  # Redis went away again: wait() rides the outage out, then we look again
                continue
            return await self._record(generation_id, success, value)

    async def _requeue_vanished(self, generation_id: str) -> bool:
        """A generation whose job has neither a record nor a result in Redis: queue it again.

        Redis restarted from its append-only file loses up to its last second of writes, so a job
        enqueued just before can vanish; a result can also expire before anyone recorded it.
        SQLite holds everything the job needs, so it is rebuilt from there under the same job id
        (several front ends doing this at once enqueue it once: arq refuses an existing id).
        Bounded: after ``MAX_REQUEUES`` the generation fails (GenerationFailed) rather than loop;
        one cancelled meanwhile ends cancelled (GenerationCancelled). Redis errors (QUEUE_AWAY)
        propagate: nothing is decided while it is away. False: nothing to do yet, look again soon.
        """
        generation = await self.store.get_generation(generation_id)
        if generation.is_final:
            return True
        if await self.queue.in_progress(generation_id):
            # A worker runs it: its lease, written back after the restart, outlived the lost
            # record. Its result will come; should the worker die, the lease lapses and we requeue.
            return False
        if await self.queue.cancel_requested(generation_id):
            await self.store.end_generation(generation_id, "cancelled", None)
            raise GenerationCancelled(generation_id)
        try:
            payload = await self._rebuilt_job(generation)
        except QUEUE_AWAY:
            raise
        except (StudioError, OSError) as error:  # a LoRA deleted meanwhile, an artifact gone
            reason = f"its job was lost and could not be queued again ({error})"
            await self.store.end_generation(generation_id, "failed", reason)
            raise GenerationFailed(generation_id, reason) from None
        if not await self.store.count_requeue(generation_id, MAX_REQUEUES):
            reason = f"the queue lost its job {MAX_REQUEUES + 1} times; please try again later"
            await self.store.end_generation(generation_id, "failed", reason)
            raise GenerationFailed(generation_id, reason)
        queued = await self.queue.enqueue(jobs.INFERENCE, jobs.GENERATE, generation_id, payload)
        log.warning(
            "generation %s: its job had vanished from Redis; %s",
            generation_id,
            "queued it again" if queued else "another process queued it again",
        )
        return True

    async def _rebuilt_job(self, generation: Generation) -> dict[str, Any]:
        """The job ``submit`` queued for this generation, rebuilt from the store and artifacts."""
        recipe = generation.recipe
        init = mask = None
        if recipe.init_image is not None:
            init = await asyncio.to_thread(self.artifacts.get, recipe.init_image, ".img")
        if recipe.mask is not None:
            mask = await asyncio.to_thread(self.artifacts.get, recipe.mask)
        # Its owner, as far as the LoRAs' visibility goes (the name is only ever displayed).
        owner = Requester(generation.owner_id, generation.owner_id, server=generation.server)
        return await self._generate_job(owner, generation.id, recipe, init, mask)

    async def collect(self) -> list[Finished]:
        """Record every unfinished generation whose job has ended (e.g. while this process was down).

        One whose job vanished from Redis is queued again (``_requeue_vanished``).
        """
        finished = []
        for generation in await self.store.unfinished_generations():
            found = await self.queue.result(generation.id)
            if found is None:
                if not await self.queue.exists(generation.id):
                    with contextlib.suppress(GenerationFailed, GenerationCancelled, *QUEUE_AWAY):
                        await self._requeue_vanished(generation.id)
                continue
            try:
                finished.append(await self._record(generation.id, *found))
            except (GenerationFailed, GenerationCancelled):
                continue
        return finished

    async def _outcome(self, generation: Generation) -> Finished:
        if generation.status == "cancelled":
            raise GenerationCancelled(generation.id)
        if generation.status == "failed":
            raise GenerationFailed(generation.id, generation.error or "unknown error")
        return Finished(generation, await self.store.images_of(generation.id))

    async def _record(self, generation_id: str, success: bool, value: Any) -> Finished:
        if not success or not isinstance(value, dict) or "status" not in value:
            reason = failure_reason(value)
            await self.store.end_generation(generation_id, "failed", reason)
            raise GenerationFailed(generation_id, reason)
        result = jobs.GenerateResult.model_validate(value)
        if result.status == "cancelled":
            await self.store.end_generation(generation_id, "cancelled", None)
            raise GenerationCancelled(generation_id)
        if result.status == "failed":
            await self.store.end_generation(generation_id, "failed", result.error)
            raise GenerationFailed(generation_id, result.error or "unknown error")
        generation = await self.store.get_generation(generation_id)
        if generation.status != "done":
            pngs = [image.png for image in sorted(result.images, key=lambda i: i.index)]
            shas = [await asyncio.to_thread(self.artifacts.put, png) for png in pngs]
            grid_sha = await self._grid(generation_id, pngs) if len(pngs) > 1 else shas[0]
            if grid_sha is None:
                log.warning("generation %s: recorded without a grid", generation_id)
            records = [(i, sha, generation.recipe.for_image(i)) for i, sha in enumerate(shas)]
            await self.store.finish_generation(
                generation_id,
                records,
                grid_sha,
                result.pipeline_seconds,
                result.attempt,
                load_seconds=result.load_seconds,
            )
            # Recorded: the copy in Redis is only kept a short while (the PNGs are large). If
            # Redis is away right now it simply keeps it for its full time to live.
            with contextlib.suppress(*REDIS_DOWN):
                await self.queue.expire_result(generation_id, self.settings.recorded_result_ttl_s)
        return await self._outcome(await self.store.get_generation(generation_id))

    async def _grid(self, generation_id: str, pngs: list[bytes]) -> str | None:
        """A numbered grid, composed by a worker on the post queue (pixel work stays off this loop).

        The grid is a convenience: if it fails, the images are recorded without one.
        """
        payload = jobs.ComposeGridJob(images=pngs).model_dump()
        try:
            grid = await self._post_job(
                jobs.COMPOSE_GRID, payload, "The grid", jobs.grid_job_id(generation_id)
            )
        except StudioError as error:
            log.warning("no grid for generation %s: %s", generation_id, error)
            return None
        except REDIS_DOWN as error:  # Redis went away meanwhile: the images matter, not the grid
            log.warning("no grid for generation %s: Redis went away (%s)", generation_id, error)
            return None
        return await asyncio.to_thread(self.artifacts.put, grid)

    async def cancel(self, requester: Requester, generation_id: str) -> Generation:
        """Ask the worker to stop a queued or running job: its owner or a moderator only."""
        generation = await self.store.get_generation(generation_id)
        if generation.owner_id != requester.id and not requester.moderator:
            raise NotYours("Only the person who started this job, or a moderator, can cancel it.")
        if generation.is_final:
            raise AlreadyFinished(f"That job has already ended ({generation.status}).")
        await self.queue.request_cancel(generation_id)
        return generation

    async def queue_depth(self) -> int:
        return await self.queue.depth(jobs.INFERENCE)

    async def in_flight(self, requester: Requester) -> list[Generation]:
        return await self.store.in_flight(requester.id)

    async def history(self, requester: Requester | None = None, limit: int = 20) -> list[Generation]:
        return await self.store.list_generations(requester.id if requester else None, limit)
