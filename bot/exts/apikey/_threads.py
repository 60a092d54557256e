"""API generations sent to a Discord thread: the API promises the delivery, the bot posts it.

The API process records the promise (Studio.submit with ``deliver_to``) but cannot post; this
loop notices such promises and posts their status message, after which the bot's delivery
tracker follows the job like any other. Only API generations are picked up here (the bot posts
its own commands' status messages itself), each once: a generation being posted, or already
tracked, is skipped, and nothing runs while the start-up resume is still posting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import discord

from bot.projects import post_status

if TYPE_CHECKING:
    from bot.app import AtelierBot

log = logging.getLogger(__name__)
POLL_S = 2.0
RETRY_AFTER_S = 30.0  # after a failed post (Discord down, say), wait before the next try


class ThreadDeliveries:
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self._posting: set[str] = set()
        self._failed: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._side: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._side) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        while not self.bot.is_closed():
            await asyncio.sleep(POLL_S)
            try:
                await self.tick()
            except Exception:
                log.exception("checking for API deliveries failed")

    def _resume_busy(self) -> bool:
        # The start-up resume (bot.delivery.resume) posts promised deliveries too: let it finish.
        return self.bot.delivery.resuming

    async def tick(self) -> None:
        if self._resume_busy():
            return
        now = time.monotonic()
        for generation_id, thread_id in await self.bot.studio.keys.promised_threads():
            if generation_id in self._posting or generation_id in self.bot.delivery.tasks:
                continue
            if now - self._failed.get(generation_id, -RETRY_AFTER_S) < RETRY_AFTER_S:
                continue
            self._posting.add(generation_id)
            task = asyncio.create_task(self._post(generation_id, thread_id))
            self._side.add(task)
            task.add_done_callback(self._side.discard)

    async def _post(self, generation_id: str, thread_id: str) -> None:
        studio = self.bot.studio
        try:
            channel = self.bot.get_channel(int(thread_id)) or await self.bot.fetch_channel(int(thread_id))
            if isinstance(channel, discord.Thread | discord.TextChannel):
                await post_status(self.bot, channel, await studio.generation(generation_id))
                self._failed.pop(generation_id, None)
                return
            await self._drop(generation_id, thread_id)
        except (discord.NotFound, discord.Forbidden):
            await self._drop(generation_id, thread_id)
        except Exception:
            self._failed[generation_id] = time.monotonic()
            log.exception(
                "could not show API generation %s in thread %s; trying again", generation_id, thread_id
            )
        finally:
            self._posting.discard(generation_id)

    async def _drop(self, generation_id: str, thread_id: str) -> None:
        log.warning("thread %s of API generation %s is gone; not shown in Discord", thread_id, generation_id)
        await self.bot.studio.mark_delivered(generation_id)
