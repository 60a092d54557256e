"""Rate limits: the global 50 requests/s, per-route buckets, the Cloudflare ban, injected 429s.

Per-route buckets and global 429s are opt-in (``fake.enforce_rate_limits()``): most tests predate
them. Without them, going over the global limit is recorded as a violation instead.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import deque
from dataclasses import dataclass

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

    def oldest_of_last(self, n: int) -> float:
        """When the ``n``-th most recent event happened (the window has room once it is ``span`` old)."""
        return self._times[-n] if len(self._times) >= n else 0.0


# Which bucket a request draws from, and its top-level resource (Discord's "major parameter").
_BUCKET_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"/channels/(\d+)/messages"), "message-create"),
    ("POST", re.compile(r"/channels/(\d+)/messages/\d+/threads"), "thread-create"),
    ("POST", re.compile(r"/channels/(\d+)/threads"), "thread-create"),
    ("*", re.compile(r"/webhooks/(\d+/[^/]+)(?:/messages/[^/]+)?"), "webhook"),
)


def bucket_of(method: str, rel: str) -> tuple[str, str] | None:
    """(bucket name, major parameter) of a request, or None for routes without a bucket here."""
    for want, pattern, name in _BUCKET_ROUTES:
        found = pattern.fullmatch(rel)
        if found is not None and want in (method, "*"):
            return name, found.group(1)
    return None


class _Bucket:
    """A fixed window, the way Discord reports it: ``limit`` requests until ``reset_at``."""

    def __init__(self, name: str, limit: int, per: float) -> None:
        self.name = name
        self.limit = limit
        self.per = per
        self.used = 0
        self.reset_at = 0.0

    def take(self, now: float) -> bool:
        if now >= self.reset_at:
            self.used, self.reset_at = 0, now + self.per
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self, now: float) -> dict[str, str]:
        reset_after = max(0.0, self.reset_at - now)
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self.used)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": hashlib.md5(self.name.encode()).hexdigest(),
        }


def too_many(retry_after: float, headers: dict[str, str], *, global_: bool) -> web.Response:
    """Discord's 429: a JSON body with ``retry_after`` and a ``Via`` header (else discord.py
    takes it for a Cloudflare ban)."""
    all_headers = {
        **headers,
        "Retry-After": str(max(1, int(-(-retry_after // 1)))),
        "X-RateLimit-Scope": "global" if global_ else "user",
        "Via": "1.1 google",
    }
    if global_:
        all_headers["X-RateLimit-Global"] = "true"
    body: dict[str, object] = {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": global_,
    }
    if not global_:
        body["code"] = 0
    return json_response(body, 429, all_headers)


@dataclass
class RateLimited:
    """A 429 the fake answered (per-route or global)."""

    at: float
    method: str
    path: str
    bucket: str
    retry_after: float


class RateLimits:
    def __init__(self, world: World) -> None:
        self.world = world
        self._recent = _Window(1.0)
        self._invalid = _Window(600.0)
        self.enforced = False
        self._over_global = False
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.bucket_limits = dict(rules.RATE_LIMIT_BUCKETS)
        self.answered: list[RateLimited] = []  # every 429 from a bucket or the global limit

    def enforce(self, on: bool = True, **limits: tuple[int, float]) -> None:
        """Answer 429s for per-route buckets and the global limit (``limits``: a bucket's
        ``(requests, seconds)`` replacing the default, keys with ``_`` for ``-``)."""
        self.enforced = on
        self._buckets.clear()
        self.bucket_limits = dict(rules.RATE_LIMIT_BUCKETS)
        self.bucket_limits.update({k.replace("_", "-"): v for k, v in limits.items()})

    def count(self, route: Route | None) -> None:
        """A request towards the global limit (interaction endpoints are exempt)."""
        if route is not None and route.exempt:
            return
        if self._recent.hit() > rules.GLOBAL_RATE_LIMIT_PER_SECOND:
            if self.enforced:
                self._over_global = True
                return
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

    def limited(self, method: str, rel: str) -> web.Response | dict[str, str]:
        """With limits enforced: the 429 this request gets, else the X-RateLimit headers its
        answer carries (empty for routes without a bucket, or when not enforced)."""
        if not self.enforced:
            return {}
        now = time.monotonic()
        if self._over_global:
            self._over_global = False
            retry = max(0.05, 1.0 - (now - self._recent.oldest_of_last(rules.GLOBAL_RATE_LIMIT_PER_SECOND)))
            self.answered.append(RateLimited(now, method, redact(rel), "global", retry))
            return too_many(retry, {}, global_=True)
        found = bucket_of(method, rel)
        if found is None:
            return {}
        name, major = found
        bucket = self._buckets.get((name, major))
        if bucket is None:
            limit, per = self.bucket_limits[name]
            bucket = self._buckets[(name, major)] = _Bucket(name, limit, per)
        if not bucket.take(now):
            retry = bucket.reset_at - now
            self.answered.append(RateLimited(now, method, redact(rel), name, retry))
            return too_many(retry, bucket.headers(now), global_=False)
        return bucket.headers(now)

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
