"""The live job page of one of the person's generations (anyone else's: 404), and its events.

Without JavaScript the page shows the status when it was loaded, with a link to load it again;
with it, web/static/job.js follows /s/<server>/jobs/<id>/events (web.job_stream).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from studio.entities import Generation, ImageRecord
from studio.errors import NotFound
from web.context import Page, SignedIn
from web.job_stream import (
    EventStream,
    JobStream,
    Place,
    failure_sentence,
    queue_place,
    result_links,
)
from web.pages.media import GenerationId
from web.stream_slots import TOO_MANY_STREAMS

router = APIRouter(include_in_schema=False)
HEADINGS = {
    "queued": "Waiting in the queue",
    "running": "Painting",
    "done": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


async def own_generation(current: Page, server_id: str, generation_id: str) -> Generation:
    requester = current.me.requester(server_id)
    return await current.studio.generations.owned(requester, generation_id)


async def parent_of(current: Page, generation: Generation) -> ImageRecord | None:
    """The image this one was made from (the editor's source), to link back to."""
    parent_id = generation.recipe.parent_image
    if parent_id is None:
        return None
    try:
        return await current.studio.store.image(parent_id)
    except NotFound:  # removed meanwhile
        return None


@router.get("/s/{server_id}/jobs/{generation_id}")
async def job_page(server_id: str, generation_id: GenerationId, current: SignedIn) -> Response:
    generation = await own_generation(current, server_id, generation_id)
    studio = current.studio
    place = Place(None, None)
    if generation.status == "queued":
        place = await queue_place(studio, generation.id)
    images = await studio.store.images_of(generation.id) if generation.status == "done" else []
    failed = generation.status in ("failed", "cancelled")
    return current.web.pages.render(
        current.request,
        "job.html",
        viewer=current.me,
        server=current.me.server(server_id),
        generation=generation,
        heading=HEADINGS.get(generation.status, generation.status),
        place=place,
        results=result_links(server_id, images),
        failure=failure_sentence(generation) if failed else None,
        parent=await parent_of(current, generation),
        events_url=f"/s/{server_id}/jobs/{generation.id}/events",
        page_url=f"/s/{server_id}/jobs/{generation.id}",
    )


@router.get("/s/{server_id}/jobs/{generation_id}/events")
async def job_events(server_id: str, generation_id: GenerationId, current: SignedIn) -> Response:
    generation = await own_generation(current, server_id, generation_id)
    slots = current.web.streams
    if not slots.take(current.me.user_id):
        raise HTTPException(429, TOO_MANY_STREAMS, headers={"Retry-After": "30"})
    source = JobStream(current.studio, server_id, generation).events()
    return EventStream(slots.held(current.me.user_id, source))
