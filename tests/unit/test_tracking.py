"""The generic job tracker, with real asyncio tasks: dedup, stop, failures, retries, outages."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from studio.errors import QueueUnavailable
from studio.outage import Outage
from studio.tracking import Retry, Tracker

log = logging.getLogger("tests.tracking")


async def test_a_key_is_tracked_once_until_its_work_ends() -> None:
    tracker: Tracker[str] = Tracker("following", log)
    release = asyncio.Event()
    runs: list[str] = []

    async def work(name: str) -> None:
        runs.append(name)
        await release.wait()

    assert tracker.track("g1", lambda: work("first"))
    assert not tracker.track("g1", lambda: work("second"))  # already followed: a no-op
    assert tracker.track("g2", lambda: work("other"))
    await asyncio.sleep(0)
    assert runs == ["first", "other"]
    assert "g1" in tracker and "g2" in tracker and len(tracker) == 2

    release.set()
    await tracker.idle()
    assert "g1" not in tracker and len(tracker) == 0
    assert tracker.track("g1", lambda: work("again"))  # ended: tracked anew when asked again
    await tracker.idle()
    assert runs == ["first", "other", "again"]


async def test_stop_cancels_and_awaits_every_task() -> None:
    tracker: Tracker[int] = Tracker("following", log)
    cancelled: list[int] = []

    async def forever(number: int) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(number)
            raise

    for number in range(3):
        tracker.track(number, lambda n=number: forever(n))  # type: ignore[misc]
    await asyncio.sleep(0)
    await tracker.stop()
    assert sorted(cancelled) == [0, 1, 2]
    assert len(tracker) == 0


async def test_a_failure_is_logged_and_ends_only_its_own_task(caplog: pytest.LogCaptureFixture) -> None:
    tracker: Tracker[str] = Tracker("following generation", log, retry=Retry(then="left for later"))
    done = asyncio.Event()

    async def broken() -> None:
        raise RuntimeError("boom")

    async def fine() -> None:
        done.set()

    with caplog.at_level(logging.ERROR, logger=log.name):
        tracker.track("bad", broken)
        tracker.track("good", fine)
        await tracker.idle()
    assert done.is_set()
    assert "bad" not in tracker
    (record,) = caplog.records
    assert record.getMessage() == "following generation bad failed; left for later"
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])


async def test_a_failed_work_is_tried_again_after_each_pause_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker: Tracker[str] = Tracker(
        "delivering", log, retry=Retry((0.01, 0.02), then="retried at the next start")
    )
    tries = 0

    async def flaky() -> None:
        nonlocal tries
        tries += 1
        raise RuntimeError(f"try {tries}")

    with caplog.at_level(logging.ERROR, logger=log.name):
        tracker.track("g", flaky)
        assert not tracker.track("g", flaky)  # still tracked while it waits to try again
        await tracker.idle()
    assert tries == 3
    assert [r.getMessage() for r in caplog.records] == [
        "delivering g failed (attempt 1); retrying in 0.01s",
        "delivering g failed (attempt 2); retrying in 0.02s",
        "delivering g failed (attempt 3); retried at the next start",
    ]


async def test_retry_forever_keeps_the_last_pause() -> None:
    retry = Retry((30.0,), forever=True)
    assert [retry.pause(n) for n in (1, 2, 9)] == [30.0, 30.0, 30.0]
    assert Retry((2.0, 10.0)).pause(3) is None and Retry().pause(1) is None


async def test_a_redis_outage_is_waited_out_not_counted_as_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage("following jobs", log, first_s=0.001, cap_s=0.005)
    tracker: Tracker[str] = Tracker("following", log, outage=lambda _: outage, retry=Retry(then="given up"))
    tries = 0

    async def through_an_outage() -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise QueueUnavailable("Redis is away")
        if tries < 6:
            raise RedisConnectionError("refused")

    with caplog.at_level(logging.WARNING, logger=log.name):
        tracker.track("g", through_an_outage)
        await tracker.idle()
    assert tries == 6
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # one line when Redis went away, one when it was back: no traceback
    assert "Redis is unreachable" in messages[0] and "Redis is back" in messages[1]
    assert not outage.down


async def test_without_an_outage_policy_redis_errors_are_failures(caplog: pytest.LogCaptureFixture) -> None:
    tracker: Tracker[str] = Tracker("showing", log)

    async def away() -> None:
        raise RedisConnectionError("refused")

    with caplog.at_level(logging.ERROR, logger=log.name):
        tracker.track("g", away)
        await tracker.idle()
    assert [r.getMessage() for r in caplog.records] == ["showing g failed; given up"]


async def test_idle_waits_for_tasks_started_meanwhile() -> None:
    tracker: Tracker[str] = Tracker("posting", log)
    order: list[str] = []

    async def second() -> None:
        await asyncio.sleep(0.01)
        order.append("second")

    async def first() -> None:
        tracker.track("second", second)
        order.append("first")

    tracker.track("first", first)
    await tracker.idle()
    assert order == ["first", "second"] and len(tracker) == 0
