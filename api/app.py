"""The FastAPI app: wiring, body limits, error answers, the OpenAPI document; `atelier api` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from api import errors, health
from api.context import ApiContext
from api.followers import Followers
from api.present import Links
from api.ratelimit import RateLimiter
from api.routes import batches, finishing, generations, images, trainings
from api.uploads import JSON_LIMIT, BodyLimit
from api.webhooks import WebhookSender
from studio.app import open_studio
from studio.jsonlog import configure_logging
from studio.settings import Settings
from web import app as web_app

log = logging.getLogger(__name__)
UPLOAD_PATHS = ("/v1/remix", "/v1/upscale", "/v1/inpaint", "/v1/grade", "/v1/export")
DESCRIPTION = """\
Generate, refine and finish images with the models of an Atelier studio, as you would in its
Discord server. Authenticate with a key from `/apikey create`: `Authorization: Bearer atl_…`.
A key acts as you, in the server it was made in: it sees your work and public images, nothing else.
"""


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_studio(settings) as studio:
            webhooks = WebhookSender(settings, studio.keys)
            links = Links(public_url(settings))
            app.state.links = links
            api = ApiContext(
                settings=settings,
                studio=studio,
                limiter=RateLimiter(settings.api_rate_per_minute, settings.api_rate_burst),
                webhooks=webhooks,
                followers=Followers(studio, webhooks, links),
            )
            app.state.atelier = api
            resumed = await api.followers.resume()
            log.info("Atelier API ready; following %d unfinished jobs again", resumed)
            try:
                yield
            finally:
                await api.followers.close()
                await webhooks.close()
                await health_probe.close()
                await web.oauth.close()

    app = FastAPI(
        title="Atelier API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=errors.RESPONSES,
    )
    upload_limit = 2 * settings.max_upload_bytes + 64 * 1024  # an image and its mask

    def limit_for(path: str) -> int:
        if path.startswith("/v1/trainings"):
            return settings.api_max_body_bytes
        return upload_limit if path.startswith(UPLOAD_PATHS) else JSON_LIMIT

    app.add_middleware(BodyLimit, limit_for=limit_for)
    errors.install(app)
    health_probe = health.install(app, settings)  # /healthz, /readyz, /metrics
    for module in (generations, batches, images, finishing, trainings):
        app.include_router(module.router, prefix="/v1")
    _document_extra_models(app)
    web = web_app.install(app, public_url(settings))  # the web studio: /, /s/<server>/…
    return app


def public_url(settings: Settings) -> str:
    """The base URL clients reach the API at: api_public_url, else the address it listens on."""
    if settings.api_public_url:
        return settings.api_public_url
    host = settings.api_host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (listening everywhere names no address a client can use)
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api_port}"


def _document_extra_models(app: FastAPI) -> None:
    """Request bodies written by hand (JSON or multipart) refer to these component schemas."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _, defs = models_json_schema(
                [(model, "validation") for model in finishing.EXTRA_MODELS],
                ref_template="#/components/schemas/{model}",
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _preflight(settings: Settings) -> None:
    """Fail with one clear line (a bad catalogue, no Redis) before the server starts."""
    async with open_studio(settings):
        pass


def run(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    import uvicorn

    # --host/--port win over the settings, so the default public URL names the real address.
    settings = settings.model_copy(
        update={"api_host": host or settings.api_host, "api_port": port or settings.api_port}
    )
    configure_logging(settings.log_format)
    asyncio.run(_preflight(settings))
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        # JSON logs: uvicorn's loggers go through the root handler (formatted, redacted) too.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0
