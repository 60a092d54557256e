"""Generating images: every action that makes a generation is prepared, then started.

``prepare`` (and the refine, idea and inpaint use cases, which build the same plan) checks
everything first — the recipe, the upload, the LoRAs' visibility, the person's capacity, the
project thread — and returns a ``GenerationPlan`` or raises one ``StudioError``; nothing is
stored yet. ``start`` records and enqueues a plan; the store's insert checks capacity again,
atomically, since two plans may race.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from studio import fairness, jobs
from studio.artifacts import ArtifactStore, digest
from studio.boards import Boards
from studio.catalogue import Catalogue
from studio.control import ControlAsk, Controls
from studio.defaults import Defaults
from studio.entities import Generation, Project, Requester
from studio.errors import (
    AlreadyFinished,
    InvalidRecipe,
    NotFound,
    NotYours,
    StudioError,
    TooManyJobs,
    UnknownModel,
)
from studio.models import Models
from studio.policy import Policy, PromptBlocked
from studio.preferences import Preferences
from studio.previews import preview_every_s
from studio.projects import Projects
from studio.queue import JobQueue
from studio.quotas import Quotas
from studio.recipe import Draft, Recipe, parse_prompt, resolve
from studio.references import ReferenceAsk, References
from studio.routing import Routing
from studio.settings import Settings
from studio.store import Store
from studio.store.repository import new_id
from studio.styles import StyleBook
from studio.uploads import for_worker, verify_image

log = logging.getLogger(__name__)

BOARD_STRENGTH = 0.75  # high: a board sets palette and layout, the prompt decides the content


@dataclass(frozen=True)
class GenerationPlan:
    """A checked generation, ready to start."""

    requester: Requester
    recipe: Recipe
    project: Project | str = "default"  # a name: the requester's project of that name, made on first use
    init_image: bytes | None = None
    mask: bytes | None = None  # PNG, white = repaint
    private: bool = False
    deliver_to: str | None = None  # a channel (thread) id its result is promised to
    limit: int | None = None  # the cap its insert is held to (None: max_jobs_per_user)
    references: tuple[bytes, ...] = ()  # recipe.references' images, in order (studio.references)
    control_image: bytes | None = None  # the ControlNet's source, as uploaded (recipe.control.image)
    control_map: bytes | None = None  # the map derived from it, PNG (recipe.control.map)


@dataclass(frozen=True)
class BatchPlan:
    """Several generations checked together (an API batch): started all or none."""

    plans: tuple[GenerationPlan, ...]


def recipe_for(
    catalogue: Catalogue,
    styles: StyleBook,
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
    return resolve(draft, catalogue, secrets.randbits(32), init_image, styles)


class Generations:
    def __init__(
        self,
        settings: Settings,
        catalogue: Catalogue,
        styles: StyleBook,
        store: Store,
        queue: JobQueue,
        artifacts: ArtifactStore,
        models: Models,
        boards: Boards,
        preferences: Preferences,
        projects: Projects,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.styles = styles
        self.store = store
        self.queue = queue
        self.artifacts = artifacts
        self.models = models
        self.boards = boards
        self.preferences = preferences
        self.projects = projects
        self.policy = Policy(store.policy)  # each server's prompt blocklist
        self.routing = Routing(queue.redis, settings.queue_name(jobs.INFERENCE))  # workers' advertisements
        self.quotas = Quotas(settings, store)  # daily GPU-seconds, checked with capacity
        self.references = References(settings, catalogue, store, artifacts)  # --sref/--cref images
        self.controls = Controls(settings, catalogue, queue)  # ControlNet maps (studio.control)

    def recipe(
        self,
        text: str,
        options: Draft | None = None,
        init_image: str | None = None,
        defaults: Defaults | None = None,
    ) -> Recipe:
        return recipe_for(self.catalogue, self.styles, text, options, init_image, defaults)

    # Prepare

    async def prepare(
        self,
        requester: Requester,
        text: str,
        options: Draft | None = None,
        *,
        upload: bytes | None = None,
        use_defaults: bool = False,
        private: bool | None = None,
        project: str = "default",
        thread_id: str | None = None,
        board_in: str | None = None,
        from_board: bool = False,
        references: ReferenceAsk | None = None,
        control: ControlAsk | None = None,
    ) -> GenerationPlan:
        """A generation from a prompt: text to image, an upload's img2img, or from a mood board.

        ``use_defaults``: the person's /settings defaults lie beneath the prompt. ``private``:
        None leaves it to those defaults. ``thread_id``: deliver into that project thread (the
        requester's own, else NotFound). ``from_board``: img2img from the board of the project
        whose thread ``board_in`` is (the channel the request comes from).
        """
        target: str | Project = project
        if thread_id is not None:
            target = await self.own_thread_project(requester, thread_id)
        defaults = await self.preferences.defaults_for(requester) if use_defaults or private is None else None
        init = None
        if upload is not None:
            await asyncio.to_thread(
                verify_image, upload, self.settings.max_upload_bytes, self.settings.max_upload_pixels
            )
            init = digest(upload)
        recipe = self.recipe(text, options, init, defaults if use_defaults else None)
        chosen = private if private is not None else bool(defaults and defaults.private)
        plan = GenerationPlan(requester, recipe, target, upload, private=chosen, deliver_to=thread_id)
        await self.check(plan)
        if from_board:
            plan = await self._from_board(plan, text, options, defaults if use_defaults else None, board_in)
        plan = await self.references.apply(plan, text, options, references)  # --sref, --cref, attached
        if control is not None:  # checked, then its map made by a post worker (studio.control)
            plan = await self.controls.apply(plan, control)
        return plan

    async def prepare_batch(
        self,
        requester: Requester,
        texts: Iterable[str],
        options: Draft | None,
        *,
        private: bool | None,
        project: str,
        thread_id: str | None,
        limit: int,
    ) -> BatchPlan:
        """One generation per prompt, the person's defaults beneath each, all checked before any
        starts: each recipe (InvalidRecipe names its row, from 1), the LoRAs, and capacity for
        the whole batch against ``limit`` (the batch's cap, which each insert is held to too)."""
        target: str | Project = project
        if thread_id is not None:
            target = await self.own_thread_project(requester, thread_id)
        defaults = await self.preferences.defaults_for(requester)
        chosen = private if private is not None else bool(defaults.private)
        recipes: list[Recipe] = []
        rows = list(texts)
        for number, text in enumerate(rows, start=1):
            try:
                recipes.append(self.recipe(text, options, defaults=defaults))
            except StudioError as error:
                raise InvalidRecipe("rows", f"Row {number}: {error}") from None
        for model in dict.fromkeys(recipe.model for recipe in recipes):  # too big for every worker
            await self.routing.check(model)
        checked: set[tuple[object, ...]] = set()
        for number, recipe in enumerate(recipes, start=1):  # rows may name their own LoRAs with --lora
            try:
                await self.policy.check_prompt(requester.server, recipe.prompt, recipe.negative_prompt)
            except PromptBlocked as error:
                raise InvalidRecipe("rows", f"Row {number}: {error}") from None
            if recipe.loras and (recipe.family, recipe.loras) not in checked:
                await self.models.adapters_for(requester, recipe, share=False)
                checked.add((recipe.family, recipe.loras))
        await self.check_capacity(requester, len(recipes), limit)
        plans = []
        for number, (text, recipe) in enumerate(zip(rows, recipes, strict=True), start=1):
            plan = GenerationPlan(
                requester, recipe, target, private=chosen, deliver_to=thread_id, limit=limit
            )
            try:  # a row's --sref/--cref (links to Atelier images; studio.references)
                plans.append(await self.references.apply(plan, text, options, None))
            except StudioError as error:
                raise InvalidRecipe("rows", f"Row {number}: {error}") from None
        return BatchPlan(tuple(plans))

    async def check(self, plan: GenerationPlan) -> None:
        """What every generation passes before it starts: its LoRAs are the requester's to use
        (of the model's family), and the requester has room for one more job. The capacity
        check is early and friendly (before a front end opens a thread); the insert decides."""
        await self.policy.check_prompt(plan.requester.server, plan.recipe.prompt, plan.recipe.negative_prompt)
        await self.routing.check(plan.recipe.model)  # a model too big for every running worker
        await self.models.adapters_for(plan.requester, plan.recipe, share=False)
        await self.check_capacity(plan.requester, 1, plan.limit)

    async def check_capacity(self, requester: Requester, adding: int = 1, limit: int | None = None) -> None:
        """Fair use: at most ``max_jobs_per_user`` (or ``limit``) generations of one person queued
        or running, ``adding`` included; and today's GPU time not used up (a batch is accepted
        whole: its own jobs' cost is only known once they ran)."""
        await self.quotas.check(requester)
        limit = limit or self.settings.max_jobs_per_user
        in_flight = await self.store.count_in_flight(requester.id)
        if in_flight + adding > limit:
            raise TooManyJobs(limit)

    async def own_thread_project(self, requester: Requester, thread_id: str) -> Project:
        """The project of a thread the requester owns; any other thread does not exist for them."""
        found = await self.store.project_by_thread(thread_id)
        if found is None or found.owner_id != requester.id:
            raise NotFound(f"You have no Atelier project thread with id {thread_id}.")
        return found

    async def _from_board(
        self,
        plan: GenerationPlan,
        text: str,
        options: Draft | None,
        defaults: Defaults | None,
        channel_id: str | None,
    ) -> GenerationPlan:
        """The plan started from a mood board: its images tiled to the recipe's size, as img2img."""
        project = await self.store.project_by_thread(channel_id) if channel_id is not None else None
        if project is None:
            raise StudioError("board: uses a project's mood board: run it inside an Atelier project thread.")
        sized = plan.recipe
        collage = await self.boards.collage(project, sized.width, sized.height)
        said = (options.strength if options else None) or parse_prompt(text).strength
        with_strength = (options or Draft()).merged(Draft(strength=said or BOARD_STRENGTH))
        recipe = self.recipe(text, with_strength, digest(collage), defaults)
        return dataclasses.replace(plan, recipe=recipe, init_image=collage)

    # Start

    async def start(
        self,
        plan: GenerationPlan,
        *,
        project: Project | None = None,
        deliver_to: str | None = None,
        generation_id: str | None = None,
    ) -> Generation:
        """Record and enqueue a plan, in ``project`` if given (else the plan's).

        ``deliver_to`` (a channel id; else the plan's) records the promise to deliver the result
        there before the job is queued, so a front end that stops at any moment still delivers
        it when it is back. Capacity is checked by the insert itself, atomically (TooManyJobs).
        ``generation_id``: chosen by the caller (a recorded Discord command), else a new one.
        """
        requester, recipe = plan.requester, plan.recipe
        cap = plan.limit or self.settings.max_jobs_per_user
        deliver_to = deliver_to or plan.deliver_to
        generation_id = generation_id or new_id()
        payload = await self.job_for(
            requester,
            generation_id,
            recipe,
            plan.init_image,
            plan.mask,
            control_map=plan.control_map,
            references=list(plan.references) or None,  # None: a reroll's, read from the artifacts
        )
        if plan.init_image is not None:  # stored only once everything else is known to be valid
            await asyncio.to_thread(self.artifacts.put, plan.init_image, ".img")
        if plan.mask is not None:
            await asyncio.to_thread(self.artifacts.put, plan.mask)
        for image in plan.references:
            await asyncio.to_thread(self.artifacts.put, image, ".img")
        if plan.control_image is not None and plan.control_map is not None:
            await asyncio.to_thread(self.artifacts.put, plan.control_image, ".img")
            await asyncio.to_thread(self.artifacts.put, plan.control_map)
        where = project or plan.project
        if isinstance(where, Project):
            await self.store.ensure_user(requester.id, requester.name)
            project_row = where
        else:
            project_row = await self.projects.named(requester, where)
        server = _server_of(requester, project_row)
        if not await self.store.add_generation(
            generation_id, project_row.id, requester.id, recipe, plan.private, server, limit=cap
        ):
            raise TooManyJobs(cap)
        if deliver_to is not None:
            await self.store.add_delivery(generation_id, deliver_to, None)
        try:  # in its owner's turn (an API key's jobs are its owner's) and lane: studio.fairness
            lane = await self.preferences.lane_for(requester)
            await self.queue.enqueue(
                jobs.GENERATE,
                generation_id,
                payload,
                person=requester.id,
                lane=lane,
                cost=self.cost_of(recipe),
            )
        except BaseException:
            await self.store.delete_generation(generation_id)
            raise
        return await self.store.get_generation(generation_id)

    def cost_of(self, recipe: Recipe) -> int:
        """The turns its job takes in its owner's fair share (studio.fairness.job_cost)."""
        try:
            model = self.catalogue.get(recipe.model)
        except UnknownModel:  # a model taken out of the catalogue since: one turn
            return 1
        native = model.native_size
        return fairness.job_cost(
            recipe.batch, recipe.steps, recipe.width * recipe.height, model.default_steps, native * native
        )

    async def start_batch(
        self, batch: BatchPlan, on_started: Callable[[Generation], Awaitable[None]] | None = None
    ) -> list[Generation]:
        """Start every plan of a batch in order; if one fails (the queue went away), the ones
        already queued are cancelled, best effort, and the error is raised."""
        started: list[Generation] = []
        try:
            for plan in batch.plans:
                generation = await self.start(plan)
                started.append(generation)
                if on_started is not None:
                    await on_started(generation)
        except BaseException:
            if batch.plans:
                await self._withdraw(batch.plans[0].requester, started)
            raise
        return started

    async def imagine(
        self,
        requester: Requester,
        text: str,
        options: Draft | None = None,
        project: str = "default",
        init_image: bytes | None = None,
    ) -> Generation:
        """Prepare and start at once, for callers with nothing to do in between (CLI, benches)."""
        plan = await self.prepare(requester, text, options, upload=init_image, project=project, private=False)
        return await self.start(plan)

    async def _withdraw(self, requester: Requester, started: list[Generation]) -> None:
        for generation in started:
            try:
                await self.cancel(requester, generation.id)
            except Exception:
                log.warning(
                    "could not withdraw generation %s of a failed batch", generation.id, exc_info=True
                )

    async def job_for(
        self,
        requester: Requester,
        generation_id: str,
        recipe: Recipe,
        init_image: bytes | None,
        mask: bytes | None,
        control_map: bytes | None = None,
        references: list[bytes] | None = None,
    ) -> dict[str, Any]:
        """A generation's job for the worker: the one builder for start and for a job queued again.

        Checks the model (catalogue) and the LoRAs (visible to the requester, of the model's
        family), and shares the LoRAs' weights in Redis.
        """
        model = self.catalogue.get(recipe.model)
        adapters = await self.models.adapters_for(requester, recipe)
        if control_map is None and recipe.control is not None and recipe.control.map is not None:
            control_map = await self.artifacts.read(recipe.control.map)  # a job queued again
        payload = jobs.GenerateJob(
            generation_id=generation_id,
            recipe=recipe.model_dump(mode="json"),
            model=model.ref(),
            init_image=None if init_image is None else await asyncio.to_thread(for_worker, init_image),
            mask=mask,
            adapters=adapters,
            control_map=control_map,
            # a job queued again reads its reference images back from the artifacts
            references=references if references is not None else await self.references.images_of(recipe),
            preview_every_s=await preview_every_s(self.store, self.settings, requester),
        )
        return payload.model_dump()

    # While it runs

    async def cancel(self, requester: Requester, generation_id: str) -> Generation:
        """Ask the worker to stop a queued or running job: its owner or a moderator only."""
        generation = await self.store.get_generation(generation_id)
        if generation.owner_id != requester.id and not requester.moderator:
            raise NotYours("Only the person who started this job, or a moderator, can cancel it.")
        if generation.is_final:
            raise AlreadyFinished(f"That job has already ended ({generation.status}).")
        await self.queue.request_cancel(generation_id)
        return generation

    async def owned(
        self, requester: Requester, generation_id: str, refused: StudioError | None = None
    ) -> Generation:
        """A generation of the requester's. Another person's is ``refused`` (what a front end
        says about an action on a message everyone sees), else does not exist for them."""
        generation = await self.store.get_generation(generation_id)
        if generation.owner_id != requester.id:
            raise refused or NotFound(f"No generation with id {generation_id}.")
        return generation

    async def record_status_post(self, generation_id: str, channel_id: str, message_id: str) -> None:
        """The message that shows a generation's progress and, in the end, its result there."""
        await self.store.add_post(message_id, channel_id, generation_id, "status")
        await self.store.add_delivery(generation_id, channel_id, message_id)
        await self.store.set_status_message(generation_id, channel_id, message_id)


def _server_of(requester: Requester, project: Project) -> str | None:
    """The community a new generation belongs to: where it will be shown.

    A project thread lives in one server, so its results belong there (an API key minted in
    another server may still deliver into its owner's thread); otherwise the requester's.
    """
    if project.thread_id is not None and project.server is not None:
        return project.server
    return requester.server
