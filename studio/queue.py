"""The queue port: arq on Redis with the msgpack contract of studio.jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.exceptions import RedisError

from studio import fairness, jobs
from studio.cancellation import raise_lost_cancel
from studio.errors import QueueUnavailable, StudioError, WorkerUnavailable
from studio.outage import REDIS_DOWN, Outage
from studio.settings import Settings

log = logging.getLogger(__name__)
ProgressHandler = Callable[[jobs.ProgressEvent], Awaitable[None]]
WORKER_RETURN_S = 5.0  # after an outage: how long run() looks for a worker to report again
WORKER_CHECK_S = 5.0  # how often a waiting run() checks that a worker is still there for its job


def redacted(url: str) -> str:
    """The Redis URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redis_settings(url: str, retries: int = 0) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = retries
    settings.conn_timeout = 2
    return settings


def failure_reason(value: Any) -> str:
    """Words for a failed arq job's result (our serializer stores exceptions as name + message)."""
    if isinstance(value, dict):
        message = str(value.get("message") or "").strip()
        name = str(value.get("error") or "")
        if name == "TimeoutError":
            return "the job took longer than the worker's time limit"
        return message or name or "the worker failed"
    return str(value) or "the worker failed"


class JobResultMissing(Exception):
    """The job has neither a result nor a queued/running job record (expired or never enqueued)."""


class _Deadline(Exception):
    """``wait``'s own time limit, kept apart from TimeoutError: that is an OSError, which
    REDIS_DOWN counts as an outage (and logged "Redis is unreachable" every few seconds)."""


class JobQueue:
    def __init__(self, redis: ArqRedis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.prefix = settings.queue_prefix
        self.outage = Outage("waiting for jobs", log, cap_s=1.0)  # one per process: logged once
        self._assign = redis.register_script(fairness.ASSIGN_AND_ENQUEUE)

    @classmethod
    async def connect(cls, settings: Settings, retries: int = 0) -> JobQueue:
        try:
            redis = await create_pool(
                redis_settings(settings.redis_url, retries),
                job_serializer=jobs.serialize,
                job_deserializer=jobs.deserialize,
                default_queue_name=settings.queue_name(jobs.INFERENCE),
            )
            await redis.ping()
        except (OSError, RedisError) as exc:
            raise QueueUnavailable(
                f"Cannot reach Redis at {redacted(settings.redis_url)} ({type(exc).__name__}). "
                "Is it running? Set ATELIER_REDIS_URL to point at it."
            ) from None
        return cls(redis, settings)

    async def close(self) -> None:
        await self.redis.aclose()

    async def enqueue(
        self,
        function: str,
        job_id: str,
        payload: dict[str, Any],
        *,
        person: str | None = None,
        lane: fairness.Lane = fairness.DEFAULT_LANE,
        cost: int = 1,
    ) -> bool:
        """Enqueue once, on the job's own queue (studio.jobs.JOBS): False when a job or result
        with this id already exists (a no-op).

        Its arq score is its fair place (studio.fairness): ``person`` is whose turn it takes
        (an API key's jobs are its owner's; None: one shared "unattributed" person), ``lane``
        fast or relax. With ``fair_scheduling`` off everyone is one person: first in, first out.
        """
        queue_name = self.settings.queue_name(jobs.JOBS[function].queue)
        if not self.settings.fair_scheduling:
            person = fairness.FIFO_PERSON
        who = person or "~unattributed"
        low, high = fairness.lane_range(lane)
        record = serialize_job(function, (payload,), {}, None, timestamp_ms(), serializer=jobs.serialize)
        try:
            score = await self._assign(
                keys=[
                    queue_name,
                    jobs.ARQ_JOB_PREFIX + job_id,
                    jobs.ARQ_RESULT_PREFIX + job_id,
                    fairness.person_key(queue_name, lane, who),
                    fairness.frontier_key(queue_name, lane),
                ],
                args=[
                    low,
                    high,
                    cost * fairness.SLOTS,
                    fairness.SLOTS,
                    record,
                    self.redis.expires_extra_ms,
                    self.settings.result_ttl_s,
                    job_id,
                ],
            )
        except (OSError, RedisError) as exc:
            raise QueueUnavailable(f"Could not enqueue the job: Redis said {type(exc).__name__}.") from None
        return int(score) >= 0

    async def result(self, job_id: str) -> tuple[bool, Any] | None:
        """(success, value) of a finished job, or None while it is queued or running."""
        raw = await self.redis.get(jobs.ARQ_RESULT_PREFIX + job_id)
        if raw is None:
            return None
        data = jobs.deserialize(raw)
        return bool(data["s"]), data["r"]

    async def expire_result(self, job_id: str, seconds: int) -> None:
        await self.redis.expire(jobs.ARQ_RESULT_PREFIX + job_id, seconds)

    async def exists(self, job_id: str) -> bool:
        return bool(await self.redis.exists(jobs.ARQ_JOB_PREFIX + job_id, jobs.ARQ_RESULT_PREFIX + job_id))

    async def depth(self, kind: str) -> int:
        """Jobs waiting or running in a queue."""
        return int(await self.redis.zcard(self.settings.queue_name(kind)))

    async def position(self, kind: str, job_id: str) -> int | None:
        """How many jobs are ahead of this one in its queue (running ones included); None if gone."""
        rank = await self.redis.zrank(self.settings.queue_name(kind), job_id)
        return None if rank is None else int(rank)

    async def wait(
        self,
        job_id: str,
        on_progress: ProgressHandler | None = None,
        timeout: float | None = None,
        outage_limit: float | None = None,
    ) -> tuple[bool, Any]:
        """Wait for a job's result, relaying its progress events.

        Completion is pushed through pub/sub ("finished" after arq stored the result), so no
        polling delay is added; a slow poll remains as a safety net for a missed message.
        A Redis outage is waited out (reconnect with backoff, subscribe again, check the result
        again); after ``outage_limit`` seconds of it, QueueUnavailable. Progress published
        while the connection was down is simply missed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        outage = self.outage
        while True:
            try:
                return await self._wait_connected(job_id, on_progress, deadline, outage)
            except _Deadline:
                raise TimeoutError(job_id) from None  # waited long enough: no outage involved
            except REDIS_DOWN as error:
                pause = outage.failed(error)
                if outage_limit is not None and outage.seconds >= outage_limit:
                    raise QueueUnavailable(
                        f"Lost contact with Redis at {redacted(self.settings.redis_url)} for "
                        f"{outage.seconds:.0f}s while waiting for job {job_id}. The job carries on "
                        "and its result is kept: `atelier history` records it once Redis is back."
                    ) from None
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(job_id) from None
                await asyncio.sleep(pause)

    async def _wait_connected(
        self, job_id: str, on_progress: ProgressHandler | None, deadline: float | None, outage: Outage
    ) -> tuple[bool, Any]:
        pubsub = self.redis.pubsub()
        try:
            # Subscribe before the first result check: a "finished" in between is not missed.
            await pubsub.subscribe(jobs.progress_channel(self.prefix, job_id))
            outage.recovered()
            check = True
            while True:
                if check:
                    found = await self.result(job_id)
                    if found is not None:
                        return found
                    if not await self.exists(job_id):
                        raise JobResultMissing(job_id)
                if deadline is not None and time.monotonic() > deadline:
                    raise _Deadline(job_id)
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                await raise_lost_cancel()
                if message is None:
                    check = True
                    continue
                try:
                    event = jobs.ProgressEvent.model_validate(jobs.deserialize(message["data"]))
                except Exception as error:  # anyone who can publish on Redis can send this
                    log.warning("job %s: ignored a malformed progress message (%s)", job_id, error)
                    check = False
                    continue
                check = event.type == "finished"
                if on_progress is not None and not check:
                    await on_progress(event)
        finally:
            with contextlib.suppress(*REDIS_DOWN):
                await pubsub.unsubscribe()
            with contextlib.suppress(*REDIS_DOWN):
                await pubsub.aclose()

    async def in_progress(self, job_id: str) -> bool:
        """Whether a worker holds the job right now (its lease is fresh)."""
        return bool(await self.redis.exists(jobs.ARQ_IN_PROGRESS_PREFIX + job_id))

    async def share_blob(self, sha: str, load: Callable[[], Awaitable[bytes]]) -> None:
        """Make a large shared input available to workers under its digest for ``blob_ttl_s``.

        An existing copy only has its time to live renewed, so the bytes travel once.
        """
        key = jobs.blob_key(self.prefix, sha)
        try:
            if not await self.redis.expire(key, self.settings.blob_ttl_s):
                await self.redis.set(key, await load(), ex=self.settings.blob_ttl_s)
        except (OSError, RedisError) as exc:
            raise QueueUnavailable(
                f"Could not share the job's inputs: Redis said {type(exc).__name__}."
            ) from None

    async def run(
        self,
        job: jobs.JobSpec[jobs.PayloadT, jobs.ResultT],
        payload: jobs.PayloadT,
        *,
        timeout: float,
        what: str,
        job_id: str | None = None,
        user_facing: frozenset[str] = frozenset(),
    ) -> jobs.ResultT:
        """One job from enqueue to result, for callers that wait for it (grids, finishing).

        WorkerUnavailable when no worker answers within ``timeout``; a failed job is a
        StudioError in words: the worker's own message for the exception names in
        ``user_facing``, otherwise a generic sentence (and the reason is logged).
        """
        kind = job.queue
        job_id = job_id or f"{job.name}:{uuid.uuid4().hex}"
        if not await self._worker_in_sight(kind):  # fail at once rather than wait out the time limit
            raise WorkerUnavailable(
                f"{what} cannot start: no {kind} worker is running. Please try again later."
            )
        await self.enqueue(job.name, job_id, payload.model_dump())
        success, value = await self._wait_while_served(kind, job_id, timeout, what)
        await self.expire_result(job_id, self.settings.recorded_result_ttl_s)
        if success and isinstance(value, dict):
            return job.result_of(value)
        if isinstance(value, dict) and value.get("error") in user_facing:
            raise StudioError(f"{what} could not be made: {failure_reason(value)}")
        log.error("%s failed: %s", job.name, failure_reason(value))
        raise StudioError(f"{what} failed on the worker; an image may be unusual. It has been logged.")

    async def _wait_while_served(self, kind: str, job_id: str, timeout: float, what: str) -> tuple[bool, Any]:
        """``wait`` in slices: between them, a job no live worker holds or can take is withdrawn
        (WorkerUnavailable) instead of being waited for until ``timeout``."""
        deadline = time.monotonic() + timeout
        late = WorkerUnavailable(f"{what} got no answer from a worker in time; please try again shortly.")
        while True:
            remaining = deadline - time.monotonic()
            try:
                return await self.wait(job_id, timeout=max(0.0, min(WORKER_CHECK_S, remaining)))
            except JobResultMissing:
                raise late from None
            except TimeoutError:
                if time.monotonic() >= deadline:
                    if not await self.in_progress(job_id):
                        await self._withdraw(kind, job_id)
                    raise late from None
            if not await self.in_progress(job_id) and not await self.has_worker(kind):
                await self._withdraw(kind, job_id)
                raise WorkerUnavailable(
                    f"{what} cannot start: its {kind} worker is gone. Please try again later."
                )

    async def _worker_in_sight(self, kind: str) -> bool:
        """``has_worker``, with a few seconds' grace just after a Redis outage: a restarted Redis
        may have expired the health keys, and workers write theirs again on their next poll."""
        if await self.has_worker(kind):
            return True
        ended = self.outage.ended_at
        if ended is None or time.monotonic() - ended > WORKER_RETURN_S * 5:
            return False
        deadline = time.monotonic() + WORKER_RETURN_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if await self.has_worker(kind):
                return True
        return False

    async def _withdraw(self, kind: str, job_id: str) -> None:
        """Take a job nobody will answer for off its queue, so it does not run after its caller gave up."""
        await self.redis.zrem(self.settings.queue_name(kind), job_id)
        await self.redis.delete(jobs.ARQ_JOB_PREFIX + job_id)

    async def has_worker(self, kind: str) -> bool:
        """Whether any worker of this queue has a fresh health-check key."""
        pattern = jobs.health_check_key(self.settings.queue_name(kind), "*")
        try:
            return bool([key async for key in self.redis.scan_iter(match=pattern, count=100)])
        except (OSError, RedisError) as exc:
            raise QueueUnavailable(f"Could not check the workers: Redis said {type(exc).__name__}.") from None

    async def request_cancel(self, job_id: str) -> None:
        """Cooperative cancellation: the worker checks this flag before and during the job."""
        await self.redis.set(jobs.cancel_key(self.prefix, job_id), b"1", ex=self.settings.result_ttl_s)

    async def cancel_requested(self, job_id: str) -> bool:
        """Whether someone asked to stop this job (request_cancel)."""
        return bool(await self.redis.exists(jobs.cancel_key(self.prefix, job_id)))

    async def publish(self, job_id: str, event: jobs.ProgressEvent) -> None:
        await self.redis.publish(
            jobs.progress_channel(self.prefix, job_id), jobs.serialize(event.model_dump())
        )

    async def live_workers(self) -> dict[str, int]:
        """Per queue, the workers whose health-check key is fresh (each worker writes its own)."""
        counts = {}
        for kind in jobs.QUEUES:
            pattern = jobs.health_check_key(self.settings.queue_name(kind), "*")
            counts[kind] = len([key async for key in self.redis.scan_iter(match=pattern, count=100)])
        return counts
