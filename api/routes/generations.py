"""/v1/generations (text to image), /v1/remix (image to image)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request

from api import schemas
from api.auth import CallerDep
from api.generating import destination, draft_of, launch
from api.present import Links, generation_out
from api.routing import StrictJsonRoute
from api.uploads import read_upload
from studio.errors import NotFound

router = APIRouter(tags=["generations"], route_class=StrictJsonRoute)
GenerationId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post("/generations", status_code=202, summary="Start a generation")
async def create_generation(
    body: schemas.GenerationIn, caller: CallerDep, request: Request
) -> schemas.GenerationOut:
    """Validates everything, records and queues it; poll its `url`, or give a `webhook_url`."""
    where = await destination(caller, body.project, body.private, body.webhook_url, body.discord_thread_id)
    recipe = caller.api.studio.plan(body.prompt, draft_of(body), defaults=where.defaults)
    generation = await launch(caller, where, recipe)
    return await generation_out(
        caller.api.studio,
        generation,
        Links.of(request),
        await caller.api.studio.keys.api_generation(generation.id),
    )


@router.post("/remix", status_code=202, summary="Start a generation from an uploaded image")
async def remix(
    form: Annotated[schemas.RemixForm, Form(media_type="multipart/form-data")],
    caller: CallerDep,
    request: Request,
) -> schemas.GenerationOut:
    """img2img: the upload is checked (size, format, pixels, a full decode) before anything is queued."""
    studio = caller.api.studio
    upload = await read_upload(form.image, caller.api.settings.max_upload_bytes)
    where = await destination(caller, form.project, form.private, form.webhook_url, form.discord_thread_id)
    recipe = await studio.plan_upload(form.prompt, draft_of(form, form.strength), upload)
    generation = await launch(caller, where, recipe, init_image=upload)
    return await generation_out(
        studio, generation, Links.of(request), await studio.keys.api_generation(generation.id)
    )


@router.get("/generations", summary="Your recent generations")
async def list_generations(
    caller: CallerDep, request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> schemas.GenerationList:
    studio = caller.api.studio
    links = Links.of(request)
    found = await studio.history(caller.requester, limit)
    return schemas.GenerationList(generations=[await generation_out(studio, g, links) for g in found])


@router.get("/generations/{generation_id}", summary="A generation: status, recipe and images")
async def get_generation(
    generation_id: GenerationId, caller: CallerDep, request: Request
) -> schemas.GenerationOut:
    studio = caller.api.studio
    generation = await studio.generation(generation_id)
    if generation.owner_id != caller.requester.id:
        raise NotFound(f"No generation with id {generation_id}.")
    if not generation.is_final:
        caller.api.followers.generation(generation.id)  # e.g. after a restart of this process
    record = await studio.keys.api_generation(generation.id)
    return await generation_out(studio, generation, Links.of(request), record)
