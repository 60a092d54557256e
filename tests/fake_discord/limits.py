"""Rate limits: the global 50 requests/s, the Cloudflare ban on invalid requests, injected 429s."""

from __future__ import annotations

import hashlib
import re
import time
from collections import deque

from aiohttp import web

from tests.fake_discord import rules
from tests.fake_discord.routing import API_PREFIX, Route, json_response, redact
from tests.fake_discord.state import RateLimitInjection
from tests.fake_discord.world import World


class _Window:
    """How many events fell in the last ``span`` seconds, and whether that was already reported."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.flagged = False
        self._times: deque[float] = deque()

    def hit(self) -> int:
        now = time.monotonic()
        self._times.append(now)
        while self._times and now - self._times[0] > self.span:
            self._times.popleft()
        return len(self._times)


class RateLimits:
    def __init__(self, world: World) -> None:
        self.world = world
        self._recent = _Window(1.0)
        self._invalid = _Window(600.0)

    def count(self, route: Route | None) -> None:
        """A request towards the global limit (interaction endpoints are exempt)."""
        if route is not None and route.exempt:
            return
        if self._recent.hit() > rules.GLOBAL_RATE_LIMIT_PER_SECOND:
            if not self._recent.flagged:
                self._recent.flagged = True
                self.world.record_violation(
                    f"global rate limit: more than {rules.GLOBAL_RATE_LIMIT_PER_SECOND} requests in 1 s "
                    "(interaction endpoints excluded)"
                )
        else:
            self._recent.flagged = False

    def count_invalid(self, status: int) -> None:
        if status not in (401, 403, 429):
            return
        if self._invalid.hit() > rules.INVALID_REQUESTS_PER_10_MIN and not self._invalid.flagged:
            self._invalid.flagged = True
            self.world.record_violation(
                "more than 10,000 invalid (401/403/429) requests in 10 min: Cloudflare ban"
            )

    def inject_rate_limit(
        self,
        method: str,
        path_regex: str,
        count: int = 1,
        retry_after: float = 0.2,
        global_: bool = False,
    ) -> RateLimitInjection:
        """Answer the next ``count`` matching requests with a 429.

        ``path_regex`` must match the whole path (``re.fullmatch``), relative to /api/v10
        (``r"/channels/\\d+/messages"``) or with the prefix; interaction tokens in paths may be
        matched literally or as ``<token>`` (``r"/webhooks/\\d+/<token>"``).
        """
        rule = RateLimitInjection(method.upper(), path_regex, count, retry_after, global_)
        self.world.rate_limits.append(rule)
        return rule

    def injected(self, method: str, rel: str) -> web.Response | None:
        """The 429 an injected rate limit answers this request with, if one matches."""
        for rule in self.world.rate_limits:
            if rule.remaining <= 0 or rule.method not in (method, "*"):
                continue
            candidates = (rel, API_PREFIX + rel, redact(rel), API_PREFIX + redact(rel))
            if not any(re.fullmatch(rule.path_regex, c) for c in candidates):
                continue
            rule.remaining -= 1
            rule.hits.append(time.monotonic())
            headers = {
                "Retry-After": str(max(1, int(-(-rule.retry_after // 1)))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
                "X-RateLimit-Bucket": hashlib.md5(rule.path_regex.encode()).hexdigest(),
                "X-RateLimit-Scope": "global" if rule.global_ else "user",
                "Via": "1.1 google",
            }
            if rule.global_:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.global_,
            }
            if not rule.global_:
                body["code"] = 0
            return json_response(body, 429, headers)
        return None
