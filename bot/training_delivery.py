"""Training runs into threads: step, loss and ETA edits, checkpoint samples, then the comparison.

Like generations, each run started from Discord has one status message; a tracker follows the
run and edits it until it becomes the result. ``loras.delivered_at`` makes the result go out
once; on start the bot resumes every run not yet delivered.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import discord

from bot import render
from bot.delivery import ThrottledEditor, delivery_tracker
from bot.ui import training as training_render
from bot.ui.images import Picture, guild_of, send_images
from bot.ui.training import training_view
from studio import jobs
from studio.entities import Lora

if TYPE_CHECKING:
    from bot.app import AtelierBot

log = logging.getLogger(__name__)


class TrainingDelivery:
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self.following = delivery_tracker("delivering training")

    def track(self, lora_id: str, channel_id: str, message_id: str) -> None:
        self.following.track(lora_id, lambda: self._deliver(lora_id, channel_id, message_id))

    async def post_status(self, channel: discord.abc.Messageable, lora: Lora) -> discord.Message:
        """The status message of a new run, tracked until it becomes the result."""
        studio = self.bot.studio
        total = studio.forge.params_of(lora).steps
        message = await channel.send(
            training_render.status(lora, total, None, await studio.queue.position(jobs.TRAINING, lora.id)),
            view=training_view(lora.id),
            allowed_mentions=render.NO_PINGS,
        )
        await studio.store.loras.set_status_message(lora.id, str(message.channel.id), str(message.id))
        self.track(lora.id, str(message.channel.id), str(message.id))
        return message

    async def resume(self) -> int:
        """Follow every run whose outcome has not been posted yet (after a restart)."""
        pending = await self.bot.studio.store.loras.undelivered()
        for lora in pending:
            if lora.message_id is not None and lora.channel_id is not None:
                self.track(lora.id, lora.channel_id, lora.message_id)
            elif lora.channel_id is not None:  # promised before a stop, never posted
                try:
                    channel = await self._channel(lora.channel_id)
                    await self.post_status(channel, lora)
                except discord.HTTPException:
                    log.warning("could not post the status of training %s", lora.id, exc_info=True)
        return len(pending)

    async def close(self) -> None:
        await self.following.stop()

    async def _channel(self, channel_id: str) -> discord.abc.Messageable:
        channel = self.bot.get_channel(int(channel_id)) or await self.bot.fetch_channel(int(channel_id))
        assert isinstance(channel, discord.Thread | discord.TextChannel)
        return channel

    async def _deliver(self, lora_id: str, channel_id: str, message_id: str) -> None:
        try:
            channel = await self._channel(channel_id)
            assert isinstance(channel, discord.Thread | discord.TextChannel)
            await self._follow_and_finish(lora_id, channel, channel.get_partial_message(int(message_id)))
        except discord.NotFound:
            log.warning("status message of training %s is gone; delivery dropped", lora_id)
            await self.bot.studio.store.loras.mark_delivered(lora_id)

    async def _follow_and_finish(
        self, lora_id: str, channel: discord.abc.Messageable, message: discord.PartialMessage
    ) -> None:
        forge = self.bot.studio.forge
        lora = await self.bot.studio.store.loras.get(lora_id)
        total = forge.params_of(lora).steps
        editor = ThrottledEditor(message, self.bot.discord_settings.progress_edit_interval_s)
        pace: dict[str, float] = {}  # time and step of the attempt's first progress, for the ETA

        async def on_update(lora: Lora, event: jobs.ProgressEvent | None) -> None:
            if event is not None and event.type == "sample" and event.png is not None:
                text = f"🖼️ Checkpoint at step {event.step}/{total}: `{lora.trigger}`"
                await send_images(
                    self.bot,
                    [Picture(event.png, f"{lora.name}-step{event.step}")],
                    lambda files: channel.send(text, files=files, allowed_mentions=render.NO_PINGS),
                    guild=guild_of(channel),
                )
                return
            if event is not None and event.type == "started":
                pace.clear()
            rate = None
            if lora.status == "running" and lora.step:
                if not pace:
                    pace.update(t=time.monotonic(), step=float(lora.step))
                elapsed = time.monotonic() - pace["t"]
                if elapsed > 0 and lora.step > pace["step"]:
                    rate = (lora.step - pace["step"]) / elapsed
            if lora.status == "retrying":
                await editor.final(content=training_render.status(lora, total, None))  # never skipped
            elif not lora.is_final:
                await editor.edit(training_render.status(lora, total, rate))

        finished = await forge.follow(lora_id, on_update)
        if finished.status == "done":
            await self._post_result(finished, editor)
        else:
            await editor.final(content=training_render.ended(finished), view=None)
        await self.bot.studio.store.loras.mark_delivered(lora_id)

    async def _post_result(self, lora: Lora, editor: ThrottledEditor) -> None:
        pictures = []
        if lora.comparison is not None:
            png = await self.bot.studio.artifacts.read(lora.comparison)
            pictures.append(Picture(png, f"{lora.name}-v{lora.version}-compare"))
        await send_images(
            self.bot,
            pictures,
            lambda files: editor.final(
                content=training_render.done(lora),
                embed=training_render.lora_embed(lora),
                view=None,
                attachments=files,
            ),
            guild=guild_of(editor.message),
        )
