"""A small HTTP server for container orchestrators and Prometheus, in the bot and every worker.

GET /metrics  the process's metrics (studio.metrics), Prometheus' text format
GET /healthz  200 while the process runs and Redis answers a PING, else 503
GET /readyz   200 once the process has started (its ``ready`` check says so) and Redis answers

The API serves the same three paths on its own port (api.app). Off unless ``health_port`` is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from studio import metrics
from studio.settings import Settings

log = logging.getLogger(__name__)
PING_TIMEOUT_S = 1.0


class RedisProbe:
    """Answers whether Redis is reachable now, within a second (a probe must never hang)."""

    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(
            url, socket_connect_timeout=PING_TIMEOUT_S, socket_timeout=PING_TIMEOUT_S
        )

    async def reachable(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.client.ping(), PING_TIMEOUT_S * 2))
        except Exception:  # any failure to answer is "not reachable"
            return False

    async def close(self) -> None:
        await self.client.aclose()


async def health_answer(probe: RedisProbe, ready: bool = True) -> tuple[int, str]:
    """(status, body) for /healthz (ready=True) or /readyz."""
    if not await probe.reachable():
        return 503, "redis unreachable\n"
    if not ready:
        return 503, "starting\n"
    return 200, "ok\n"


class HealthServer:
    def __init__(
        self,
        settings: Settings,
        ready: Callable[[], bool] = lambda: True,
        before_scrape: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.ready = ready
        self.before_scrape = before_scrape
        self.probe = RedisProbe(settings.redis_url)
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.before_scrape is not None:
            await self.before_scrape()
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        status, body = await health_answer(self.probe)
        return web.Response(status=status, text=body)

    async def _readyz(self, request: web.Request) -> web.Response:
        status, body = await health_answer(self.probe, self.ready())
        return web.Response(status=status, text=body)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.health_host, self.settings.health_port)
        await site.start()
        log.info(
            "health and metrics on http://%s:%d (/healthz /readyz /metrics)",
            self.settings.health_host,
            self.settings.health_port,
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.probe.close()


async def start_health_server(
    settings: Settings,
    ready: Callable[[], bool] = lambda: True,
    before_scrape: Callable[[], Awaitable[None]] | None = None,
) -> HealthServer | None:
    """The server on ``health_port``, or None when that is 0 (off)."""
    if not settings.health_port:
        return None
    server = HealthServer(settings, ready, before_scrape)
    await server.start()
    return server
