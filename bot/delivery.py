"""Results into threads: progress edits while a job runs, the result when it ends, once.

Each generation started from Discord has a status message. A tracker follows the job and edits
that message (queue position, then a progress bar at most every ``progress_edit_interval_s``)
until it becomes the result: grid, recipe embed and buttons. Editing one message makes delivery
idempotent, and ``deliveries.delivered_at`` makes it happen once; on start the bot resumes every
undelivered generation, so jobs that finished while it was down are delivered then.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord

from bot import render
from bot.control import control_pictures
from bot.tiling import tile_pictures
from bot.ui.generation import result_view
from bot.ui.images import Picture, age_restricted, send_images, withheld_sentence
from bot.ui.weblinks import image_pages, studio_base
from studio import eta, jobs
from studio.entities import Generation
from studio.errors import GenerationCancelled, GenerationFailed
from studio.outage import REDIS_LOST, Outage
from studio.tracking import Retry, Tracker

if TYPE_CHECKING:
    from bot.app import AtelierBot
    from studio.app import Studio

log = logging.getLogger(__name__)
POSITION_POLL_S = 2.0
RETRY_PAUSES_S = (2.0, 10.0, 30.0)  # transient failures (Discord 5xx, a busy database)
MAX_PREVIEW_BYTES = 256 * 1024  # far under any upload limit; previews are a few KB
OUTAGE_CAP_S = 5.0  # while Redis is away: the longest pause between tries (they never run out)


async def queue_eta(studio: Studio, position: int | None) -> float | None:
    """About how many seconds until a queued job with ``position`` jobs ahead is done (studio.eta);
    None without an estimate, including when one cannot be had right now: a status is never lost
    to its estimate."""
    try:
        return await eta.shared(studio.store, studio.generations.routing).seconds(position)
    except Exception:
        log.warning("no queue estimate this time", exc_info=True)
        return None


def delivery_tracker(what: str) -> Tracker[str]:
    """Deliveries into Discord, keyed by id: transient failures (Discord 5xx, a busy database)
    are tried again after a pause, and after the last try left for the next start. A Redis outage
    is not a failed try: the delivery keeps following, however long Redis is away."""
    return Tracker(
        what,
        log,
        outage=lambda key: Outage(f"{what} {key}", log, first_s=0.5, cap_s=OUTAGE_CAP_S),
        retry=Retry(RETRY_PAUSES_S, then="retried at the next start"),
    )


class Delivery:
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self.following = delivery_tracker("delivering generation")
        # Status messages promised before a restart and being posted by ``resume``.
        self.posting_missing: Tracker[str] = Tracker("posting the status of", log)

    @property
    def resuming(self) -> bool:
        """Whether status messages promised before a restart are still being posted."""
        return len(self.posting_missing) > 0

    def track(self, generation_id: str, channel_id: str, message_id: str) -> None:
        self.following.track(generation_id, lambda: self._deliver(generation_id, channel_id, message_id))

    async def resume(self) -> int:
        """Track every generation whose result has not been delivered yet (after a restart)."""
        pending = await self.bot.studio.store.undelivered()
        for delivery in pending:
            if delivery.status_message_id is None:  # promised before a stop, never posted
                self.posting_missing.track(
                    delivery.generation_id,
                    functools.partial(self._post_missing_status, delivery.generation_id, delivery.channel_id),
                )
            else:
                self.track(delivery.generation_id, delivery.channel_id, delivery.status_message_id)
        return len(pending)

    async def _post_missing_status(self, generation_id: str, channel_id: str) -> None:
        from bot.projects import post_status

        try:
            channel = self.bot.get_channel(int(channel_id)) or await self.bot.fetch_channel(int(channel_id))
            assert isinstance(channel, discord.abc.Messageable)
            posted = await self._find_status(channel, generation_id)
            if posted is not None:  # sent just before the stop, but not recorded: adopt it
                await self.bot.studio.generations.record_status_post(
                    generation_id, str(posted.channel.id), str(posted.id)
                )
                self.track(generation_id, str(posted.channel.id), str(posted.id))
                return
            await post_status(self.bot, channel, await self.bot.studio.store.get_generation(generation_id))
        except discord.NotFound:
            log.warning("channel of %s is gone; delivery dropped", generation_id)
            await self.bot.studio.store.mark_delivered(generation_id)
        except Exception:
            log.exception("could not post the status of %s; retried at the next start", generation_id)

    async def _find_status(
        self, channel: discord.abc.Messageable, generation_id: str
    ) -> discord.Message | None:
        """A status message of this generation among the channel's recent messages, if any."""
        marker = f":{generation_id}:"
        async for message in channel.history(limit=50):
            if self.bot.user is None or message.author.id != self.bot.user.id:
                continue
            for row in message.components:
                for item in getattr(row, "children", []):
                    if marker in (getattr(item, "custom_id", None) or ""):
                        return message
        return None

    async def close(self) -> None:
        await self.posting_missing.stop()
        await self.following.stop()

    async def _deliver(self, generation_id: str, channel_id: str, message_id: str) -> None:
        try:
            await self._follow_and_finish(generation_id, await self._message(channel_id, message_id))
        except discord.NotFound:
            log.warning("status message of generation %s is gone; delivery dropped", generation_id)
            await self.bot.studio.store.mark_delivered(generation_id)

    async def _message(self, channel_id: str, message_id: str) -> discord.PartialMessage:
        channel = self.bot.get_channel(int(channel_id)) or await self.bot.fetch_channel(int(channel_id))
        assert isinstance(channel, discord.Thread | discord.TextChannel)
        return channel.get_partial_message(int(message_id))

    async def _follow_and_finish(self, generation_id: str, message: discord.PartialMessage) -> None:
        studio = self.bot.studio
        generation = await studio.store.get_generation(generation_id)
        editor = ThrottledEditor(message, self.bot.discord_settings.progress_edit_interval_s)
        started = asyncio.Event()
        clock = {"t": time.monotonic(), "attempt": 1}
        live = LivePreviews()  # the newest preview the worker sent (gpu_worker/preview.py)

        async def on_progress(event: jobs.ProgressEvent) -> None:
            if event.type == "started":
                started.set()
                clock["t"], clock["attempt"] = time.monotonic(), event.attempt
            elif event.type == "step" and event.total:
                live.keep(event.preview)
                # A job that ends within one edit interval needs no progress edit at all: its
                # result then goes out at once instead of waiting out the edit throttle.
                if time.monotonic() - clock["t"] < editor.interval:
                    return
                text = render.progress(generation, event.step, event.total, clock["t"], int(clock["attempt"]))
                await editor.edit(text, live.file)

        async def show_position() -> None:
            while not started.is_set():
                await asyncio.sleep(POSITION_POLL_S)
                try:
                    position = await studio.queue.position(jobs.INFERENCE, generation_id)
                except REDIS_LOST:
                    continue  # Redis is away: the position shows again once it is back
                if position is not None and not started.is_set():
                    await editor.edit(render.queued(generation, position, await queue_eta(studio, position)))

        watcher = asyncio.create_task(show_position())
        try:
            finished = await studio.results.follow(generation_id, on_progress)
        except GenerationCancelled:
            await editor.final(
                content="❌ Cancelled. " + render.summary(generation.recipe), view=None, **live.cleared()
            )
        except GenerationFailed as failure:
            text = f"⚠️ This generation failed: {render.quote(failure.reason, 1500)}"
            await editor.final(content=text, view=None, **live.cleared())
        else:
            await self._post_result(finished.generation, message, editor)
        finally:
            watcher.cancel()
        await studio.store.mark_delivered(generation_id)
        self.bot.dispatch("generation_delivered", generation_id)  # e.g. /evolve posts its poll

    async def _post_result(
        self, generation: Generation, message: discord.PartialMessage, editor: ThrottledEditor
    ) -> None:
        grid = generation.grid_artifact
        embed = render.result_embed(generation, render.credit(generation.owner_id))
        count = generation.recipe.batch
        base = studio_base(self.bot.settings.api_public_url)
        view = result_view(generation.id, count, image_pages(base, generation.server, generation.id, count))
        content = f"✅ Done · {render.summary(generation.recipe)}"
        safe = await self.bot.studio.store.policy.safe_grid(generation.id)  # content policy
        if safe is not None and not age_restricted(message.channel):
            grid = safe or None  # flagged tiles blurred ("": none could be, so nothing is posted)
            flagged = await self.bot.studio.store.policy.flagged_indices(generation.id)
            content += "\n⚠️ " + withheld_sentence(flagged)
        png = await self.bot.studio.artifacts.read(grid) if grid else None
        if png is None:  # no grid (no post worker answered): the images are still recorded
            await editor.final(content=content + " · grid unavailable, use U1…", embed=embed, view=view)
            return
        guild = message.guild if isinstance(message.guild, discord.Guild) else None
        await send_images(
            self.bot,
            [
                Picture(png, f"atelier-{generation.id[:8]}"),
                *await control_pictures(self.bot.studio, generation),  # its control map beside it
                *await tile_pictures(  # --tile: each image 2x2 (bot/tiling.py)
                    self.bot.studio,
                    generation,
                    hide_flagged=safe is not None and not age_restricted(message.channel),
                ),
            ],
            lambda files: editor.final(content=content, embed=embed, view=view, attachments=files),
            guild=guild,
        )
        remix = self.bot.get_cog("atelier")
        if remix is not None and guild is not None and safe is None:  # flagged: never cross-posted
            try:
                await remix.share(generation, guild, png)  # type: ignore[attr-defined]
            except discord.HTTPException:
                log.warning("could not cross-post %s to the remix channels", generation.id, exc_info=True)


class LivePreviews:
    """The newest live preview of a running job, attached once to the next progress edit (it
    replaces the one before); a preview over MAX_PREVIEW_BYTES is never attached."""

    def __init__(self) -> None:
        self.newest: bytes | None = None
        self.shown = False

    def keep(self, preview: bytes | None) -> None:
        if preview is not None and len(preview) <= MAX_PREVIEW_BYTES:
            self.newest = preview

    def file(self) -> discord.File | None:
        preview, self.newest = self.newest, None
        if preview is None:
            return None
        self.shown = True
        return discord.File(io.BytesIO(preview), filename="preview.webp", description="live preview")

    def cleared(self) -> dict[str, Any]:
        """Fields for a final edit without a result image: the last preview taken off."""
        return {"attachments": []} if self.shown else {}


class ThrottledEditor:
    """Edits one message at most every ``interval`` seconds (Discord rate-limits edits)."""

    def __init__(self, message: discord.PartialMessage, interval: float) -> None:
        self.message = message
        self.interval = interval
        self.last = 0.0
        self.lock = asyncio.Lock()

    async def edit(self, content: str, preview: Callable[[], discord.File | None] | None = None) -> None:
        """``preview``: the live preview to attach with this edit, if there is a new one."""
        if time.monotonic() - self.last < self.interval or self.lock.locked():
            return  # skipped; a later event (or the result) brings it up to date
        async with self.lock:
            self.last = time.monotonic()
            picture = preview() if preview is not None else None
            extra: dict[str, Any] = {"attachments": [picture]} if picture is not None else {}
            try:
                await self.message.edit(content=content, allowed_mentions=render.NO_PINGS, **extra)
            except discord.HTTPException as error:
                log.info("progress edit skipped: %s", error)

    async def final(self, **fields: object) -> None:
        async with self.lock:
            wait = self.interval - (time.monotonic() - self.last)
            if wait > 0:
                await asyncio.sleep(wait)
            await self.message.edit(allowed_mentions=render.NO_PINGS, **fields)  # type: ignore[arg-type]
            self.last = time.monotonic()
