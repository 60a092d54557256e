"""API generations sent to a Discord thread: the API promises the delivery, the bot posts it.

The API process records the promise (a delivery row, with ``deliver_to``) but cannot post; it
announces it through Redis (studio.notices) and the bot posts the status message at once, after
which the bot's delivery tracker follows the job like any other. A slow sweep of the promises in
SQLite (when the bot is ready, after each Redis reconnection, and every ``SWEEP_S``) finds those
whose notice was missed while the bot was down or Redis away. Only API generations are picked
up here (the bot posts its own commands' status messages itself), each once: a generation being
posted, or already tracked, is skipped, and nothing is posted while the start-up resume is
still posting promised deliveries itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord

from bot.projects import post_status
from studio.notices import DeliveryNotice
from studio.tracking import Retry, Tracker

if TYPE_CHECKING:
    from bot.app import AtelierBot

log = logging.getLogger(__name__)
SWEEP_S = 60.0  # the safety sweep: notices are the normal path
RETRY_AFTER_S = 30.0  # after a failed post (Discord down, say), wait before the next try


class ThreadDeliveries:
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self.posting: Tracker[str] = Tracker(
            "showing API generation", log, retry=Retry((RETRY_AFTER_S,), forever=True)
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.posting.stop()

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        notices = self.bot.studio.keys.notices
        assert notices is not None, "the studio wires the delivery notices"
        await self.sweep()  # promised while the bot was down; again once subscribed (a race)
        listening = asyncio.create_task(notices.listen(self._on_notice, self.sweep))
        try:
            while not self.bot.is_closed():
                await asyncio.sleep(SWEEP_S)
                await self.sweep()
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    async def _on_notice(self, notice: DeliveryNotice) -> None:
        log.debug("API generation %s promised to thread %s", notice.generation_id, notice.thread_id)
        self._show(notice.generation_id)

    async def sweep(self) -> None:
        """Show every promised API generation not shown yet (the notices missed)."""
        try:
            promised = await self.bot.studio.store.keys.promised_threads()
        except Exception:
            log.exception("checking for API deliveries failed")
            return
        for generation_id, _ in promised:
            self._show(generation_id)

    def _show(self, generation_id: str) -> None:
        if generation_id not in self.bot.delivery.following:
            self.posting.track(generation_id, lambda: self._post(generation_id))

    async def _post(self, generation_id: str) -> None:
        # The start-up resume (bot.delivery.resume) posts promised deliveries too: let it finish.
        await self.bot.delivery.posting_missing.idle()
        if generation_id in self.bot.delivery.following:
            return
        # The promise in SQLite, not the notice, says where: a notice is only a hint to look.
        thread_id = dict(await self.bot.studio.store.keys.promised_threads()).get(generation_id)
        if thread_id is None:
            return  # shown meanwhile, or delivered
        studio = self.bot.studio
        try:
            channel = self.bot.get_channel(int(thread_id)) or await self.bot.fetch_channel(int(thread_id))
            if isinstance(channel, discord.Thread | discord.TextChannel):
                await post_status(self.bot, channel, await studio.store.get_generation(generation_id))
                return
            await self._drop(generation_id, thread_id)
        except (discord.NotFound, discord.Forbidden):
            await self._drop(generation_id, thread_id)

    async def _drop(self, generation_id: str, thread_id: str) -> None:
        log.warning("thread %s of API generation %s is gone; not shown in Discord", thread_id, generation_id)
        await self.bot.studio.store.mark_delivered(generation_id)
