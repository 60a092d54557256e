"""raise_lost_cancel raises a cancellation that a time limit swallowed, and nothing otherwise."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from studio.cancellation import raise_lost_cancel


async def test_a_swallowed_cancel_is_raised() -> None:
    async def poll() -> None:
        # What asyncio.timeout does on Python 3.11 when a cancel meets its expiry:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        await raise_lost_cancel()

    task = asyncio.create_task(poll())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


async def test_a_cancel_still_on_its_way_is_delivered_once() -> None:
    reached = []

    async def poll() -> None:
        asyncio.current_task().cancel()  # type: ignore[union-attr]  # requested while running
        try:
            await raise_lost_cancel()
        except asyncio.CancelledError:
            reached.append("cancelled")
            await asyncio.sleep(0)  # no second CancelledError for the same request
            reached.append("after")
            raise

    task = asyncio.create_task(poll())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reached == ["cancelled", "after"]


async def test_a_handled_time_limit_is_no_cancel() -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)
    await raise_lost_cancel()  # asyncio.timeout gave its cancel back: nothing to raise
