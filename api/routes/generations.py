"""/v1/generations (text to image), /v1/remix (image to image)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request

from api import schemas
from api.auth import CallerDep
from api.generating import destination, launched, recorded
from api.present import Links, generation_out
from api.routing import StrictJsonRoute
from api.uploads import read_upload
from studio.control import ControlAsk
from studio.permutations import prepare_set, start_set
from studio.recipe import Draft

router = APIRouter(tags=["generations"], route_class=StrictJsonRoute)
GenerationId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post("/generations", status_code=202, summary="Start a generation")
async def create_generation(
    body: schemas.GenerationIn, caller: CallerDep, request: Request
) -> schemas.GenerationOut | schemas.BatchOut:
    """Validates everything, records and queues it; poll its `url`, or give a `webhook_url`.

    A prompt with `{a, b}` permutations starts one generation per prompt it expands into and
    answers as a batch does (`row` is the prompt's number); above `permutation_confirm_above`
    prompts it needs `"confirm": true` (else 400, the count in `detail`, `field` "confirm")."""
    studio = caller.api.studio
    where = destination(caller, body.project, body.private, body.webhook_url, body.discord_thread_id)
    plans = await prepare_set(  # studio/permutations.py: one plan without `{...}`
        studio.generations,
        caller.requester,
        body.prompt,
        Draft.from_options(dict(body)),
        confirmed=body.confirm,
        use_defaults=True,
        private=where.private,
        project=where.project,
        thread_id=where.deliver_to,
    )
    links = Links.of(request)
    if len(plans) == 1:
        return await launched(caller, plans[0], where, links)
    started = await start_set(
        studio.generations, plans, on_started=lambda generation: recorded(caller, generation, where)
    )
    return schemas.BatchOut(
        count=len(started),
        generations=[
            schemas.BatchItemOut(row=number, id=g.id, status=g.status, url=links.generation(g.id))
            for number, g in enumerate(started, start=1)
        ],
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
    where = destination(caller, form.project, form.private, form.webhook_url, form.discord_thread_id)
    plan = await studio.generations.prepare(
        caller.requester,
        form.prompt,
        Draft.from_options(dict(form)),
        upload=upload,
        private=where.private,
        project=where.project,
        thread_id=where.deliver_to,
    )
    return await launched(caller, plan, where, Links.of(request))


@router.post("/control", status_code=202, summary="Start a generation that follows an image's structure")
async def control(
    form: Annotated[schemas.ControlForm, Form(media_type="multipart/form-data")],
    caller: CallerDep,
    request: Request,
) -> schemas.GenerationOut:
    """ControlNet: the upload's canny edges (or scribble, line art; depth and pose where configured) steer
    a text-to-image generation. The map is made and checked before anything is queued."""
    upload = await read_upload(form.image, caller.api.settings.max_upload_bytes)
    where = destination(caller, form.project, form.private, form.webhook_url, form.discord_thread_id)
    ask = ControlAsk(upload, form.control_mode, form.control_strength, form.control_start, form.control_end)
    plan = await caller.api.studio.generations.prepare(
        caller.requester,
        form.prompt,
        Draft.from_options(dict(form)),
        use_defaults=True,
        private=where.private,
        project=where.project,
        thread_id=where.deliver_to,
        control=ask,
    )
    return await launched(caller, plan, where, Links.of(request))


@router.get("/generations", summary="Your recent generations")
async def list_generations(
    caller: CallerDep, request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> schemas.GenerationList:
    studio = caller.api.studio
    links = Links.of(request)
    found = await studio.store.list_generations(caller.requester.id, limit)
    return schemas.GenerationList(generations=[await generation_out(studio, g, links) for g in found])


@router.get("/generations/{generation_id}", summary="A generation: status, recipe and images")
async def get_generation(
    generation_id: GenerationId, caller: CallerDep, request: Request
) -> schemas.GenerationOut:
    studio = caller.api.studio
    generation = await studio.generations.owned(caller.requester, generation_id)
    if not generation.is_final:
        caller.api.followers.generation(generation.id)  # e.g. after a restart of this process
    record = await studio.store.keys.generation(generation.id)
    return await generation_out(studio, generation, Links.of(request), record)
