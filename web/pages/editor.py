"""The mask editor on one of the person's own images (anyone else's: 404), and what it sends.

The page (web/static/mask.js) paints a mask at the image's size, white = repaint, and posts it
with a prompt and a mode: ``inpaint`` goes to the same use case as /inpaint (the prompt in the
masked area), ``region`` to Vary (Region)'s (the image's own recipe, a new seed, the mask as the
region). Either is started by web.launch: recorded as the web's, promised to the image's project
thread (the bot posts the result there), followed by the API process; the answer is the job page.
Outpainting (Zoom Out, pans) needs no painted mask: plain form buttons beside the editor, the
same use case as the bot's buttons.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Response, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse

from api.uploads import read_upload
from studio.entities import Generation, ImageRecord, Project
from studio.errors import InvalidRecipe
from studio.generations import GenerationPlan
from studio.outpaint import DIRECTIONS
from studio.recipe import Draft, parse_prompt
from web.context import Page, SignedIn
from web.launch import job_url, launch
from web.pages.media import GenerationId, Index, image_url
from web.sessions import check_csrf

router = APIRouter(include_in_schema=False)
MODES = ("inpaint", "region")
OUTPAINT_ZOOMS = {"z1.5": 1.5, "z2": 2.0}  # the bot's Zoom Out buttons
MAX_PROMPT = 2000


@dataclass(frozen=True)
class Editable:
    """One of the person's images, with the generation and project it belongs to."""

    generation: Generation
    image: ImageRecord
    project: Project


async def editable(current: Page, server_id: str, generation_id: str, index: int) -> Editable:
    """Only the person who made an image edits it; for anyone else it does not exist."""
    requester = current.me.requester(server_id)
    studio = current.studio
    generation = await studio.generations.owned(requester, generation_id)
    image = await studio.store.image_at(generation_id, index)
    return Editable(generation, image, await studio.store.get_project(generation.project_id))


def image_page(server_id: str, image: ImageRecord) -> str:
    return f"/s/{server_id}/images/{image.generation_id}/{image.index}"


@router.get("/s/{server_id}/images/{generation_id}/{index}/edit")
async def edit_page(server_id: str, generation_id: GenerationId, index: Index, current: SignedIn) -> Response:
    found = await editable(current, server_id, generation_id, index)
    image = found.image
    return current.web.pages.render(
        current.request,
        "editor.html",
        viewer=current.me,
        server=current.me.server(server_id),
        image=image,
        image_src=image_url(server_id, image),
        image_page=image_page(server_id, image),
        post_url=f"{image_page(server_id, image)}/inpaint",
        project=found.project,
        max_prompt=MAX_PROMPT,
    )


@router.post("/s/{server_id}/images/{generation_id}/{index}/inpaint")
async def inpaint(
    server_id: str,
    generation_id: GenerationId,
    index: Index,
    current: SignedIn,
    mask: Annotated[UploadFile | None, File()] = None,
    prompt: Annotated[str, Form(max_length=MAX_PROMPT)] = "",
    mode: Annotated[str, Form(max_length=16)] = "inpaint",
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> Response:
    check_csrf(current.me, x_csrf_token)
    found = await editable(current, server_id, generation_id, index)
    if mode not in MODES:
        raise InvalidRecipe("mode", "Choose Inpaint or Vary region.")
    if mask is None:
        raise InvalidRecipe("mask", "No mask came with the request: paint the area to repaint first.")
    # Its size is checked before anything decodes it.
    painted = await read_upload(mask, current.api.settings.max_upload_bytes, "The mask")
    if mode == "region":
        plan = await _region(current, server_id, found, painted)
    else:
        plan = await _inpaint(current, server_id, found, painted, prompt.strip())
    generation = await launch(current, plan)
    return JSONResponse({"job_url": job_url(server_id, generation), "generation_id": generation.id}, 202)


async def _inpaint(
    current: Page, server_id: str, found: Editable, mask: bytes, prompt: str
) -> GenerationPlan:
    """/inpaint's use case: the prompt painted into the mask, with the image's model unless the
    prompt names one, in the image's project and privacy, delivered to its thread if it has one."""
    if not prompt:
        raise InvalidRecipe("prompt", "Say what to paint in the masked area, or choose Vary region.")
    studio = current.studio
    requester = current.me.requester(server_id)
    record, png = await studio.finishing.image(requester, found.image.generation_id, found.image.index)
    options = Draft() if parse_prompt(prompt).model else Draft(model=record.recipe.model)
    return await studio.finishing.prepare_inpaint(
        requester,
        prompt,
        png,
        mask,
        None,
        options,
        parent=record,
        private=found.generation.private,
        project=found.project.name,
        thread_id=found.project.thread_id,
    )


async def _region(current: Page, server_id: str, found: Editable, mask: bytes) -> GenerationPlan:
    """Vary (Region)'s use case with the painted mask, delivered to the project's thread."""
    requester = current.me.requester(server_id)
    plan = await current.studio.refine.prepare_region(
        requester, found.image.generation_id, found.image.index, mask=mask
    )
    return dataclasses.replace(plan, deliver_to=found.project.thread_id)


@router.post("/s/{server_id}/images/{generation_id}/{index}/outpaint")
async def outpaint(
    server_id: str,
    generation_id: GenerationId,
    index: Index,
    current: SignedIn,
    edit: Annotated[str, Form(max_length=16)],
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """Zoom Out or a pan, as the bot's buttons do (Refine.prepare_outpaint: no painted mask, the
    new area is the mask), in the image's project and delivered to its thread; then the job page."""
    check_csrf(current.me, csrf_token)
    found = await editable(current, server_id, generation_id, index)
    requester = current.me.requester(server_id)
    refine = current.studio.refine
    if edit in OUTPAINT_ZOOMS:
        plan = await refine.prepare_outpaint(requester, generation_id, index, zoom=OUTPAINT_ZOOMS[edit])
    elif edit in DIRECTIONS:
        plan = await refine.prepare_outpaint(requester, generation_id, index, pan=edit)
    else:
        raise InvalidRecipe("edit", "Choose Zoom out 1.5x or 2x, or a direction to pan.")
    generation = await launch(current, dataclasses.replace(plan, deliver_to=found.project.thread_id))
    return RedirectResponse(job_url(server_id, generation), 303)
