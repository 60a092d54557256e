"""Daily GPU-second quotas: per person per server, charged from each finished job's real worker time.

A person may start work while their use since the last reset is under their limit (the cost of
a job is only known once it ran, so the job that crosses the limit still finishes). The day
resets at ``quota_reset_hour`` UTC. Limits: the studio's ``daily_gpu_seconds`` (0: unlimited),
which a server replaces for everyone with a limit on its @everyone role (the role's id is the
guild's) and raises for some roles (e.g. boosters); the highest limit a person has wins and 0
is unlimited. The per-person cap of jobs in flight (``max_jobs_per_user``) is separate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from studio.entities import Generation, Requester
from studio.errors import InvalidRecipe, NotYours, QuotaExceeded
from studio.settings import Settings
from studio.store import Store

DAY = timedelta(days=1)


def last_reset(now: datetime, reset_hour: int) -> datetime:
    """The latest reset at ``reset_hour``:00 UTC that is not after ``now`` (an aware datetime)."""
    today = now.astimezone(UTC).replace(hour=reset_hour, minute=0, second=0, microsecond=0)
    return today if today <= now else today - DAY


def next_reset(now: datetime, reset_hour: int) -> datetime:
    return last_reset(now, reset_hour) + DAY


def effective_limit(
    default_s: float, server: str | None, roles: frozenset[str], limits: dict[str, float]
) -> float:
    """A person's daily limit in seconds (0: unlimited).

    The server's @everyone limit (keyed by the server's id) replaces the studio default; a role
    of the person's with a limit can raise it; 0 anywhere among these means unlimited.
    """
    base = limits.get(server, default_s) if server else default_s
    candidates = [base, *(limits[role] for role in roles if role in limits and role != server)]
    return 0.0 if any(c == 0 for c in candidates) else max(candidates)


def seconds_text(seconds: float) -> str:
    """Seconds for people: seconds under ten minutes, then whole minutes, hours from two."""
    if seconds < 600:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class QuotaStanding:
    used_s: float
    limit_s: float  # 0: unlimited
    resets_at: datetime

    @property
    def unlimited(self) -> bool:
        return self.limit_s == 0

    @property
    def reached(self) -> bool:
        return not self.unlimited and self.used_s >= self.limit_s


def discord_stamp(when: datetime) -> str:
    """A Discord timestamp: each reader sees it in their own time zone, relative ("in 3 hours")."""
    stamp = int(when.timestamp())
    return f"<t:{stamp}:R> (<t:{stamp}:t>)"


def status_line(standing: QuotaStanding) -> str:
    """The person's quota as /status shows it."""
    used = seconds_text(standing.used_s)
    if standing.unlimited:
        return f"**GPU time today:** {used} (no daily limit)"
    return (
        f"**GPU time today:** {used} of {seconds_text(standing.limit_s)} · resets "
        f"{discord_stamp(standing.resets_at)}"
    )


def limits_text(settings: Settings, server: str, limits: dict[str, float]) -> str:
    """A server's daily limits as /atelier quota shows them (roles as Discord mentions)."""

    def amount(seconds: float) -> str:
        return "unlimited" if seconds == 0 else f"{seconds:g} GPU-seconds"

    everyone = limits.get(server, settings.daily_gpu_seconds)
    lines = [f"Daily GPU time per person here: {amount(everyone)} (everyone)."]
    lines += [f"<@&{role}>: {amount(seconds)}" for role, seconds in limits.items() if role != server]
    lines.append(
        f"The day resets at {settings.quota_reset_hour:02d}:00 UTC; the highest limit a person has wins."
    )
    return "\n".join(lines)


class DailyQuotaReached(QuotaExceeded):
    """The person used their GPU time for today; ``str()`` gives the reset as ISO 8601 (the API),
    ``discord_text`` as a Discord timestamp that each reader sees in their own time zone."""

    def __init__(self, standing: QuotaStanding, now: datetime) -> None:
        self.standing = standing
        self.retry_after_s = max(1, math.ceil((standing.resets_at - now).total_seconds()))
        iso = standing.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        super().__init__(f"{self._used()} It resets at {iso}.")

    def _used(self) -> str:
        used, limit = self.standing.used_s, self.standing.limit_s
        return f"You have used your daily GPU time here: {seconds_text(used)} of {seconds_text(limit)}."

    @property
    def discord_text(self) -> str:
        return f"{self._used()} It resets {discord_stamp(self.standing.resets_at)}."


MAX_ROLE_LIMIT_S = 30 * 24 * 3600  # a typo guard: a day has 86,400 seconds


class Quotas:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    async def standing(self, requester: Requester, now: datetime | None = None) -> QuotaStanding:
        now = now or datetime.now(UTC)
        start = last_reset(now, self.settings.quota_reset_hour)
        limits = await self.store.quotas.role_limits(requester.server) if requester.server else {}
        limit = effective_limit(self.settings.daily_gpu_seconds, requester.server, requester.roles, limits)
        if requester.operator:
            limit = 0.0
        used = await self.store.quotas.used_since(requester.id, requester.server, start.timestamp())
        return QuotaStanding(used, limit, start + DAY)

    async def check(self, requester: Requester) -> None:
        """Before anything is queued: DailyQuotaReached once today's use reached the limit."""
        now = datetime.now(UTC)
        standing = await self.standing(requester, now)
        if standing.reached:
            raise DailyQuotaReached(standing, now)

    async def charge_generation(self, generation: Generation, worker_seconds: float) -> bool:
        """Charge a finished generation's worker time to its owner, once (False: already charged)."""
        return await self.store.quotas.charge(
            f"generation:{generation.id}", generation.owner_id, generation.server, worker_seconds, time.time()
        )

    async def charge_finish(self, requester: Requester, finish_id: str, worker_seconds: float) -> bool:
        """Charge a finished upscale's worker time to whoever asked for it, once."""
        return await self.store.quotas.charge(
            f"finish:{finish_id}", requester.id, requester.server, worker_seconds, time.time()
        )

    # A server's limits (Manage Server)

    async def role_limits(self, server: str) -> dict[str, float]:
        return await self.store.quotas.role_limits(server)

    async def set_role_limit(
        self, requester: Requester, role_id: str, seconds: float | None
    ) -> dict[str, float]:
        """Set (``seconds``; 0 unlimited) or remove (None) a role's daily limit on the requester's server."""
        if not (requester.admin and requester.server):
            raise NotYours("Only server admins (Manage Server) can set quotas.")
        if seconds is not None and not 0 <= seconds <= MAX_ROLE_LIMIT_S:
            raise InvalidRecipe(
                "seconds", f"A daily limit is between 0 (unlimited) and {MAX_ROLE_LIMIT_S} seconds."
            )
        await self.store.ensure_user(requester.id, requester.name)
        await self.store.quotas.set_role_limit(requester.server, role_id, seconds, requester.id)
        return await self.store.quotas.role_limits(requester.server)
