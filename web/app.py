"""The web studio mounted into the API's FastAPI app (``atelier api`` serves both)."""

from __future__ import annotations

from fastapi import FastAPI

from web import errors
from web.context import WebContext
from web.oauth import DiscordOAuth
from web.pages import auth, editor, gallery, home, images, jobs, library, media, static
from web.render import Pages
from web.security import SecurityHeaders
from web.settings import WebSettings

ROUTERS = (auth, home, media, library, gallery, images, editor, jobs, static)


def install(app: FastAPI, public_url: str, discord: WebSettings | None = None) -> WebContext:
    """Mount the pages, their error pages and security headers; the caller closes ``oauth``."""
    settings = discord or WebSettings()
    web = WebContext(settings, DiscordOAuth(settings), Pages(), public_url.rstrip("/"))
    app.state.web = web
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    return web
