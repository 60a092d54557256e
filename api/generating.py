"""Starting generations from the API: where they go (project, Discord thread), then submit.

Everything is checked before the first submit: the webhook URL, the thread (a project thread
of the caller's, else 404), the recipe (plan) and, in Studio.submit, LoRAs and capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import Caller
from api.schemas import GenerationOptions, InpaintFields
from api.webhooks import check_url
from studio.defaults import Defaults
from studio.entities import Generation, Project
from studio.errors import NotFound
from studio.recipe import Draft, Recipe, parse_loras


@dataclass(frozen=True)
class Destination:
    project: str | Project
    deliver_to: str | None  # a Discord thread the bot shows it in
    private: bool
    webhook_url: str | None
    defaults: Defaults


def draft_of(options: GenerationOptions, strength: float | None = None) -> Draft:
    return Draft(
        negative_prompt=options.negative,
        model=options.model,
        aspect=options.aspect,
        batch=options.batch,
        seed=options.seed,
        steps=options.steps,
        guidance=options.guidance,
        sampler=options.sampler,
        style=options.style,
        loras=parse_loras(options.loras) if options.loras else None,
        strength=strength,
    )


def draft_of_inpaint(fields: InpaintFields) -> Draft:
    return Draft(
        negative_prompt=fields.negative,
        model=fields.model,
        seed=fields.seed,
        steps=fields.steps,
        guidance=fields.guidance,
        strength=fields.strength,
    )


async def destination(
    caller: Caller,
    project: str,
    private: bool | None,
    webhook_url: str | None,
    thread_id: str | None,
) -> Destination:
    studio = caller.api.studio
    checked = check_url(webhook_url, caller.api.settings.api_webhook_allow_loopback) if webhook_url else None
    target: str | Project = project
    if thread_id is not None:
        found = await studio.project_for_thread(thread_id)
        if found is None or found.owner_id != caller.requester.id:
            raise NotFound(f"You have no Atelier project thread with id {thread_id}.")
        target = found
    defaults = await studio.defaults_for(caller.requester)
    chosen = private if private is not None else bool(defaults.private)
    return Destination(target, thread_id, chosen, checked, defaults)


async def project_of(caller: Caller, where: Destination) -> Project:
    if isinstance(where.project, Project):
        return where.project
    return await caller.api.studio.project_named(caller.requester, where.project)


async def launch(
    caller: Caller,
    where: Destination,
    recipe: Recipe,
    init_image: bytes | None = None,
    capacity_checked: bool = False,
) -> Generation:
    studio = caller.api.studio
    generation = await studio.submit(
        caller.requester,
        recipe,
        where.project,
        init_image,
        private=where.private,
        deliver_to=where.deliver_to,
        capacity_checked=capacity_checked,
        # a batch's rows are each held to the batch cap in the store (atomic with the insert)
        limit=caller.api.settings.api_batch_max_jobs if capacity_checked else None,
    )
    await recorded(caller, generation, where)
    return generation


async def recorded(caller: Caller, generation: Generation, where: Destination) -> None:
    """Remember the API started it (and its webhook), and follow it to the end."""
    await caller.api.studio.keys.record_generation(caller.key, generation.id, where.webhook_url)
    caller.api.followers.generation(generation.id)
