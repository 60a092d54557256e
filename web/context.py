"""What every page shares (WebContext, on ``app.state.web``) and who is asking (the dependencies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from api.context import ApiContext
from api.context import context as api_context
from studio.app import Studio
from web.oauth import DiscordOAuth
from web.render import Pages
from web.sessions import Sessions, Viewer
from web.settings import WebSettings
from web.stream_slots import StreamSlots
from web.thumbnails import Thumbnails


@dataclass
class WebContext:
    discord: WebSettings
    oauth: DiscordOAuth
    pages: Pages
    public_url: str  # where browsers reach us (api_public_url): the OAuth redirect and Discord's links
    _thumbnails: Thumbnails | None = None
    streams: StreamSlots = field(default_factory=StreamSlots)  # the job pages' open event streams

    def thumbnails(self, studio: Studio) -> Thumbnails:
        if self._thumbnails is None:
            self._thumbnails = Thumbnails(studio.settings.data_dir / "thumbnails", studio.artifacts)
        return self._thumbnails

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/auth/callback"


class NeedsSignIn(Exception):
    """A page for signed-in people, asked without a session: off to sign in, then back."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


@dataclass(frozen=True)
class Page:
    """One request to the web studio: the shared parts and the person, if signed in."""

    web: WebContext
    api: ApiContext
    viewer: Viewer | None
    request: Request

    @property
    def studio(self) -> Studio:
        return self.api.studio

    @property
    def sessions(self) -> Sessions:
        return Sessions(self.studio.store, self.web.secure_cookies)

    @property
    def me(self) -> Viewer:
        assert self.viewer is not None, "a SignedIn page"
        return self.viewer


def web_context(request: Request) -> WebContext:
    found: WebContext = request.app.state.web
    return found


async def page(request: Request) -> Page:
    api = api_context(request)
    web = web_context(request)
    viewer = await Sessions(api.studio.store, web.secure_cookies).viewer(request)
    return Page(web, api, viewer, request)


async def signed_in(request: Request, current: Annotated[Page, Depends(page)]) -> Page:
    if current.viewer is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise NeedsSignIn(back)
    return current


AnyPage = Annotated[Page, Depends(page)]
SignedIn = Annotated[Page, Depends(signed_in)]


def login_url(back_to: str) -> str:
    return f"/login?next={quote(back_to, safe='')}"
