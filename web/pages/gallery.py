"""A server's gallery: its public images ranked as /browse ranks them, as a grid of thumbnails.

Filters arrive as a GET form (period, model, style, creator) so a filtered page is a link one can
share; paging is by number. The ranking, the filters' checks and what is left out (private,
flagged and other servers' images) are the community use case's, exactly as in Discord.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response

from studio.community import PERIODS
from studio.entities import ImageRecord
from web.context import SignedIn
from web.pages.media import thumbnail_url
from web.thumbnails import SIDE

router = APIRouter(include_in_schema=False)
PER_PAGE = 24  # four rows of six on a wide screen; /browse in Discord shows 5
PERIOD_NAMES = {"day": "Today", "week": "This week", "month": "This month", "all": "All time"}
Filter = Annotated[str | None, Query(max_length=100)]


def image_page_url(server_id: str, image: ImageRecord) -> str:
    return f"/s/{server_id}/images/{image.generation_id}/{image.index}"


def thumbnail_size(width: int, height: int, side: int = SIDE) -> tuple[int, int]:
    """The thumbnail's size (web.thumbnails fits the image in ``side`` px, never enlarging it), for
    the <img> width/height that keep the grid from jumping as pictures arrive."""
    scale = min(1.0, side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class Tile:
    href: str
    thumbnail: str
    width: int
    height: int
    prompt: str
    creator: str
    favourites: int
    remixes: int


def _blank(value: str | None) -> str | None:
    """An empty select ("any") sends an empty string: no filter."""
    return value.strip() or None if value is not None else None


@router.get("/s/{server_id}/gallery")
async def gallery(
    server_id: str,
    current: SignedIn,
    period: Annotated[str, Query(max_length=10)] = "week",
    model: Filter = None,
    style: Filter = None,
    creator: Filter = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    requester = current.me.requester(server_id)
    server = current.me.server(server_id)
    studio = current.studio
    model, style, creator = _blank(model), _blank(style), _blank(creator)
    entries = await studio.community.browse(
        requester,
        period,
        model,
        style,
        page - 1,
        per_page=PER_PAGE,
        creator=creator,
        posts=False,  # the gallery shows pictures, not Discord jump links
    )
    # One read for every name on the page (and the creator filter's choices), not one per tile.
    creators = await studio.store.public_creators(requester.server)
    names = dict(creators)
    tiles = []
    for entry in entries:
        image = entry.image
        width, height = thumbnail_size(image.width, image.height)
        tiles.append(
            Tile(
                image_page_url(server_id, image),
                thumbnail_url(server_id, image),
                width,
                height,
                image.recipe.prompt,
                names.get(image.owner_id, "someone"),
                entry.favourites,
                entry.remixes,
            )
        )
    chosen = {"period": period, "model": model, "style": style, "creator": creator}

    def link(number: int, **changed: str) -> str:
        query = {k: v for k, v in (chosen | changed).items() if v}
        return f"/s/{server_id}/gallery?{urlencode(query | ({'page': str(number)} if number > 1 else {}))}"

    return current.web.pages.render(
        current.request,
        "gallery.html",
        viewer=current.me,
        server=server,
        nav="gallery",
        tiles=tiles,
        chosen=chosen,
        periods=[(key, PERIOD_NAMES.get(key, key)) for key in PERIODS],
        models=sorted(entry.id for entry in studio.catalogue),
        styles=sorted(style.name for style in studio.styles),
        creators=creators,
        page=page,
        previous=link(page - 1) if page > 1 else None,
        next=link(page + 1) if len(entries) == PER_PAGE else None,
        filtered=any((model, style, creator)),
        all_time=link(1, period="all") if period != "all" else None,
    )
