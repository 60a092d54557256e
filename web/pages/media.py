"""Image files for the pages: full size (PNG) and thumbnails (WebP), for people who may see them.

As in the API: one's own images, and public images of the server; another person's private
image answers 404 as if it did not exist, and a flagged image's file goes to its owner only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from studio.entities import ImageRecord
from web.context import Page, SignedIn

router = APIRouter(include_in_schema=False)
GenerationId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Index = Annotated[int, Path(ge=0, le=7)]


def image_url(server_id: str, image: ImageRecord) -> str:
    return f"/s/{server_id}/media/{image.generation_id}/{image.index}.png"


def thumbnail_url(server_id: str, image: ImageRecord) -> str:
    return f"/s/{server_id}/media/{image.generation_id}/{image.index}/thumb.webp"


async def viewable(current: Page, server_id: str, generation_id: str, index: int) -> ImageRecord:
    """An image the person may see in this server (others, and flagged ones not theirs: 404)."""
    requester = current.me.requester(server_id)
    studio = current.studio
    image = await studio.refine.remixable(requester, generation_id, index)
    if image.owner_id != requester.id and index in await studio.store.policy.flagged_indices(generation_id):
        raise HTTPException(404)
    return image


def _cache(image: ImageRecord) -> str:
    # Public images may sit in shared caches for a while; private ones only in the person's browser.
    return "private, max-age=86400" if not image.public else "public, max-age=86400"


@router.get("/s/{server_id}/media/{generation_id}/{index}.png")
async def full_image(
    server_id: str, generation_id: GenerationId, index: Index, current: SignedIn
) -> Response:
    image = await viewable(current, server_id, generation_id, index)
    png = await current.studio.artifacts.read(image.artifact)
    return Response(png, media_type="image/png", headers={"Cache-Control": _cache(image)})


@router.get("/s/{server_id}/media/{generation_id}/{index}/thumb.webp")
async def thumbnail(server_id: str, generation_id: GenerationId, index: Index, current: SignedIn) -> Response:
    image = await viewable(current, server_id, generation_id, index)
    webp = await current.web.thumbnails(current.studio).of(image.artifact)
    return Response(webp, media_type="image/webp", headers={"Cache-Control": _cache(image)})
