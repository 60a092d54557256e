"""The front page: sign in, or the servers a person shares with the bot."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from web.context import AnyPage, SignedIn

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(current: AnyPage) -> Response:
    pages = current.web.pages
    if current.viewer is None:
        return pages.render(current.request, "signin.html", enabled=current.web.discord.enabled)
    return pages.render(current.request, "home.html", viewer=current.viewer)


@router.get("/s/{server_id}")
async def server_home(server_id: str, current: SignedIn) -> Response:
    current.me.server(server_id)
    return RedirectResponse(f"/s/{server_id}/gallery", 303)
