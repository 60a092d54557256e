"""/healthz, /readyz and /metrics on the API's own port (kept out of the OpenAPI document).

/healthz: 200 while Redis answers a PING, else 503 (the API can queue nothing without it).
/readyz:  the same, and only once the app has started (its studio open, followers resumed) and
          while its database answers (SQLite file or PostgreSQL).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from studio import jobs, metrics
from studio.health_server import RedisProbe, health_answer
from studio.settings import Settings


def install(app: FastAPI, settings: Settings) -> RedisProbe:
    """Add the three routes; the probe they share is returned for the app to close."""
    probe = RedisProbe(settings.redis_url)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        status, body = await health_answer(probe)
        return PlainTextResponse(body, status_code=status)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> PlainTextResponse:
        api = getattr(request.app.state, "atelier", None)
        status, body = await health_answer(probe, api is not None)
        if status == 200 and api is not None and not await api.studio.store.answers():
            # Every request reads or writes the store: without it the API serves only errors.
            status, body = 503, "database unreachable\n"
        return PlainTextResponse(body, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        api = getattr(request.app.state, "atelier", None)
        if api is not None:
            await metrics.refresh_queue_depths(api.studio.queue.depth, jobs.QUEUES)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return probe
