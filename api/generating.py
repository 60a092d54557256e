"""Starting generations from the API: where they go (project, Discord thread), then start.

Everything is checked before anything starts: the webhook URL here, then in the use case's
prepare the thread (a project thread of the caller's, else 404), the recipe, LoRAs and capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

from api import schemas
from api.auth import Caller
from api.present import Links, generation_out
from api.webhooks import check_url
from studio.entities import Generation
from studio.generations import GenerationPlan


@dataclass(frozen=True)
class Destination:
    project: str
    deliver_to: str | None  # a Discord thread the bot shows it in (the use case checks it)
    private: bool | None  # None: the person's defaults decide
    webhook_url: str | None  # checked


def destination(
    caller: Caller,
    project: str,
    private: bool | None,
    webhook_url: str | None,
    thread_id: str | None,
) -> Destination:
    """Where the request says its generations go; the webhook URL is checked here, the thread
    (a project thread of the caller's, else 404) by the use case."""
    checked = check_url(webhook_url, caller.api.settings.api_webhook_allow_loopback) if webhook_url else None
    return Destination(project, thread_id, private, checked)


async def launch(caller: Caller, plan: GenerationPlan, where: Destination) -> Generation:
    generation = await caller.api.studio.generations.start(plan)
    await recorded(caller, generation, where)
    return generation


async def launched(
    caller: Caller, plan: GenerationPlan, where: Destination, links: Links
) -> schemas.GenerationOut:
    """Start a prepared generation for an API caller and answer with it, as the API shows it."""
    generation = await launch(caller, plan, where)
    studio = caller.api.studio
    return await generation_out(studio, generation, links, await studio.store.keys.generation(generation.id))


async def recorded(caller: Caller, generation: Generation, where: Destination) -> None:
    """Remember the API started it (and its webhook; its thread is told to the bot), and follow it
    to the end."""
    await caller.api.studio.keys.record_generation(
        caller.key, generation.id, where.webhook_url, where.deliver_to
    )
    caller.api.followers.generation(generation.id)
