"""A cancellation must never be lost in a loop that polls Redis with a time limit.

On Python 3.11, ``asyncio.timeout`` (redis-py's reads run under it) turns a cancellation into
its own expiry when the cancel was requested while the task was running and the time limit
runs out before the task's next step; redis-py then answers None (a poll's time limit) or raises
its TimeoutError, which outage handling rides out. Either way the cancel is gone: under load
``atelier imagine`` ignored Ctrl-C and waited forever. A task with a cancel request pending
(``Task.cancelling()``: asyncio's own record, which a handled timeout gives back) is being
cancelled, so a polling loop calls ``raise_lost_cancel`` after each poll.
"""

from __future__ import annotations

import asyncio


async def raise_lost_cancel() -> None:
    """Raise CancelledError if this task was asked to stop but is still running."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        await asyncio.sleep(0)  # a cancel still on its way is delivered here, once
        raise asyncio.CancelledError  # none was: it was swallowed on the way
