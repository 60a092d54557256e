"""/v1/images: one image's PNG and its recipe. Yours, or public ones (as /browse shows them).

An image the server's safety classifier flagged is shown in Discord only in age-restricted
channels; the API has no channel, so its file goes to its owner only (403 for anyone else)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response

from api import schemas
from api.auth import Caller, CallerDep
from api.present import Links, image_recipe_out
from api.routing import StrictJsonRoute
from studio.entities import ImageRecord

router = APIRouter(tags=["images"], route_class=StrictJsonRoute)
GenerationId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Index = Annotated[int, Path(ge=0, le=7, description="The image's place in its batch, from 0")]
PNG = {200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}}
FLAGGED = {403: {"model": schemas.ErrorOut, "description": "Flagged by the safety check: its owner's only"}}
FLAGGED_DETAIL = (
    "This image was flagged by its server's image safety check: its file is available to its owner only."
)


async def servable(caller: Caller, generation_id: str, index: int) -> ImageRecord:
    """An image whose bytes the caller may have: one they may remix (their own, or public in their
    server), and, when the safety classifier flagged it, their own (403 for anyone else)."""
    studio = caller.api.studio
    image = await studio.refine.remixable(caller.requester, generation_id, index)
    if image.owner_id != caller.requester.id and index in await studio.store.policy.flagged_indices(
        generation_id
    ):
        raise HTTPException(403, FLAGGED_DETAIL)
    return image


@router.get(
    "/images/{generation_id}/{index}",
    summary="An image at full size (PNG, with its recipe in the metadata)",
    response_class=Response,
    responses={**PNG, **FLAGGED},  # type: ignore[dict-item]
)
async def image_png(generation_id: GenerationId, index: Index, caller: CallerDep) -> Response:
    image = await servable(caller, generation_id, index)
    png = await caller.api.studio.artifacts.read(image.artifact)
    filename = f"atelier-{generation_id[:8]}-{index + 1}.png"
    return Response(
        png,
        media_type="image/png",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.get("/images/{generation_id}/{index}/recipe", summary="An image's recipe")
async def image_recipe(
    generation_id: GenerationId, index: Index, caller: CallerDep, request: Request
) -> schemas.ImageRecipeOut:
    image = await caller.api.studio.refine.remixable(caller.requester, generation_id, index)
    return image_recipe_out(image, image.owner_id == caller.requester.id, Links.of(request))
