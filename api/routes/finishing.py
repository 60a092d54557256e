"""/v1/upscale, /v1/inpaint, /v1/grade, /v1/export and their results, /v1/finishes.

The source is an Atelier image (JSON: `generation_id`, `index`; yours or a public one) or an
upload (multipart/form-data: `image`). Upscales, grades and exports wait for their worker and
answer with the finished result; an inpaint is a generation, answered at once (202).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api import schemas
from api.auth import Caller, CallerDep
from api.generating import destination, launched
from api.present import CONTENT_TYPES, Links, finish_out
from api.routes.images import FLAGGED, servable
from api.routing import StrictJsonRoute
from api.uploads import either_body, parsed_body, read_upload
from studio.entities import ImageRecord
from studio.finishing import ExportSpec, Grade
from studio.recipe import Draft

router = APIRouter(tags=["finishing"], route_class=StrictJsonRoute)
FinishId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
FILE = {
    200: {
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}} for kind in set(CONTENT_TYPES.values())
        }
    }
}
# Models only named in hand-written request bodies; app.py adds them to the OpenAPI components.
EXTRA_MODELS = (
    schemas.UpscaleJson,
    schemas.UpscaleUpload,
    schemas.InpaintJson,
    schemas.InpaintUpload,
    schemas.GradeJson,
    schemas.GradeUpload,
    schemas.ExportJson,
    schemas.ExportUpload,
)


async def source_of(caller: Caller, body: BaseModel) -> tuple[bytes, ImageRecord | None]:
    """The image to work on and, for an Atelier image, its record (lineage, recipe). A flagged
    image is worked on for its owner only (images.servable): the result would be its bytes."""
    if isinstance(body, schemas.ImageSource):
        await servable(caller, body.generation_id, body.index)
        record, png = await caller.api.studio.finishing.image(
            caller.requester, body.generation_id, body.index
        )
        return png, record
    image = getattr(body, "image")  # noqa: B009 (every upload model has one)
    return await read_upload(image, caller.api.settings.max_upload_bytes), None


@router.post(
    "/upscale",
    status_code=201,
    summary="Upscale an image 2x or 4x",
    openapi_extra=either_body(schemas.UpscaleJson, schemas.UpscaleUpload),
    responses=FLAGGED,  # type: ignore[arg-type]
)
async def upscale(request: Request, caller: CallerDep) -> schemas.FinishOut:
    async with parsed_body(request, schemas.UpscaleJson, schemas.UpscaleUpload) as body:
        assert isinstance(body, schemas.UpscaleFields)
        png, record = await source_of(caller, body)
    finishing = caller.api.studio.finishing
    finish = await finishing.upscale(
        await finishing.prepare_upscale(caller.requester, png, body.factor, record)
    )
    return finish_out(finish, Links.of(request))


@router.post(
    "/inpaint",
    status_code=202,
    summary="Repaint part of an image (a mask, or a box in percent)",
    openapi_extra=either_body(schemas.InpaintJson, schemas.InpaintUpload),
    responses=FLAGGED,  # type: ignore[arg-type]
)
async def inpaint(request: Request, caller: CallerDep) -> schemas.GenerationOut:
    studio = caller.api.studio
    async with parsed_body(request, schemas.InpaintJson, schemas.InpaintUpload) as body:
        assert isinstance(body, schemas.InpaintFields)
        png, record = await source_of(caller, body)
        mask_file = getattr(body, "mask", None)
        mask = None
        if mask_file is not None:
            mask = await read_upload(mask_file, caller.api.settings.max_upload_bytes, "The mask")
    where = destination(caller, body.project, body.private, body.webhook_url, body.discord_thread_id)
    plan = await studio.finishing.prepare_inpaint(
        caller.requester,
        body.prompt,
        png,
        mask,
        body.box,
        Draft.from_options(dict(body)),
        parent=record,
        private=where.private,
        project=where.project,
        thread_id=where.deliver_to,
    )
    return await launched(caller, plan, where, Links.of(request))


@router.post(
    "/grade",
    status_code=201,
    summary="Colour-grade an image (a preset and adjustments)",
    openapi_extra=either_body(schemas.GradeJson, schemas.GradeUpload),
    responses=FLAGGED,  # type: ignore[arg-type]
)
async def grade(request: Request, caller: CallerDep) -> schemas.FinishOut:
    finishing = caller.api.studio.finishing
    async with parsed_body(request, schemas.GradeJson, schemas.GradeUpload) as body:
        assert isinstance(body, schemas.GradeFields)
        png, record = await source_of(caller, body)
    wanted = Grade(**body.model_dump(include=set(schemas.GradeFields.model_fields) - {"apply"}))
    finish = await finishing.preview_grade(
        await finishing.prepare_grade(caller.requester, png, wanted, record)
    )
    if body.apply:
        finish = await finishing.apply_grade(caller.requester, finish.id)
    return finish_out(finish, Links.of(request))


@router.post(
    "/export",
    status_code=201,
    summary="Export an image for a destination (Instagram, print, ...)",
    openapi_extra=either_body(schemas.ExportJson, schemas.ExportUpload),
    responses=FLAGGED,  # type: ignore[arg-type]
)
async def export(request: Request, caller: CallerDep) -> schemas.FinishOut:
    async with parsed_body(request, schemas.ExportJson, schemas.ExportUpload) as body:
        assert isinstance(body, schemas.ExportFields)
        png, record = await source_of(caller, body)
    spec = ExportSpec(**body.model_dump(include=set(schemas.ExportFields.model_fields)))
    finishing = caller.api.studio.finishing
    exported = await finishing.export(await finishing.prepare_export(caller.requester, png, spec, record))
    return finish_out(exported.finish, Links.of(request), exported.filename, exported.quality)


@router.post("/grade/{finish_id}/apply", status_code=201, summary="Make a previewed grade at full size")
async def apply_grade(finish_id: FinishId, request: Request, caller: CallerDep) -> schemas.FinishOut:
    finish = await caller.api.studio.finishing.apply_grade(caller.requester, finish_id)
    return finish_out(finish, Links.of(request))


@router.get("/finishes/{finish_id}", summary="An upscale, grade or export")
async def get_finish(finish_id: FinishId, request: Request, caller: CallerDep) -> schemas.FinishOut:
    finish, _ = await caller.api.studio.finishing.finish(caller.requester, finish_id)
    return finish_out(finish, Links.of(request))


@router.get(
    "/finishes/{finish_id}/file",
    summary="The result at full size",
    response_class=Response,
    responses=FILE,  # type: ignore[arg-type]
)
async def finish_file(finish_id: FinishId, caller: CallerDep) -> Response:
    finish, data = await caller.api.studio.finishing.finish(caller.requester, finish_id)
    if data is None:
        return _not_ready()
    filename = f"atelier-{finish.kind}-{finish.id[:8]}{finish.suffix}"
    return Response(
        data,
        media_type=CONTENT_TYPES.get(finish.suffix, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/finishes/{finish_id}/preview",
    summary="A grade's before/after (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def finish_preview(finish_id: FinishId, caller: CallerDep) -> Response:
    finishing = caller.api.studio.finishing
    finish, _ = await finishing.finish(caller.requester, finish_id)
    return Response(await finishing.preview_png(finish), media_type="image/png")


def _not_ready() -> Response:
    return JSONResponse(
        {"detail": "That grade was only previewed; POST /v1/grade/{id}/apply makes it."}, status_code=409
    )
