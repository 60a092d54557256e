"""Starting a generation from a web page: record it as the web's, promise it to its project's
Discord thread (the bot posts it there, as it does the API's), and follow it to the end."""

from __future__ import annotations

from studio.entities import Generation, Project
from studio.generations import GenerationPlan
from studio.notices import DeliveryNotice
from web.context import Page


async def launch(current: Page, plan: GenerationPlan, *, project: Project | None = None) -> Generation:
    """Start a prepared plan for the signed-in person; the page then shows /s/<server>/jobs/<id>.

    The plan's ``deliver_to`` (a project thread, checked by the use case's prepare) is where the
    bot shows the result; its delivery row is written before the job is queued, so a notice the
    bot misses is still found by its sweep."""
    studio = current.studio
    generation = await studio.generations.start(plan, project=project)
    await studio.store.web.add_generation(generation.id, current.me.user_id)
    thread_id = plan.deliver_to
    if thread_id is not None and studio.keys.notices is not None:
        await studio.keys.notices.announce(DeliveryNotice(generation.id, thread_id))
    current.api.followers.generation(generation.id)
    return generation


def job_url(server_id: str, generation: Generation) -> str:
    return f"/s/{server_id}/jobs/{generation.id}"
