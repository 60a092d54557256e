"""The bot: wiring, command sync, the tree error handler, and `atelier bot` / `python -m bot`."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal
import sys
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.delivery import Delivery
from bot.interactions import report
from bot.ratelimit import GlobalLimiter, limit_globally
from bot.render import NO_PINGS
from bot.settings import DiscordSettings, load_discord_settings
from bot.training_delivery import TrainingDelivery
from studio.app import open_studio
from studio.errors import StudioError
from studio.service import Studio
from studio.settings import Settings, load_settings

log = logging.getLogger(__name__)
EXTENSIONS = (
    "bot.exts.generate",
    "bot.exts.ideate",
    "bot.exts.settings",
    "bot.exts.moodboard",
    "bot.exts.browse",
    "bot.exts.remix",
    "bot.exts.forge",
    "bot.exts.finish",
    "bot.exts.apikey",
)


def point_at(discord_settings: DiscordSettings) -> None:
    """Use the configured REST base and gateway (a proxy in production, the fake in tests)."""
    discord.http.Route.BASE = discord_settings.api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(discord_settings.gateway_url)


class AtelierBot(commands.Bot):
    def __init__(self, settings: Settings, discord_settings: DiscordSettings) -> None:
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice here
        intents = discord.Intents.none()
        intents.guilds = True  # channels and threads
        intents.guild_reactions = True  # 1️⃣…8️⃣ and ⭐ pick favourites
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=NO_PINGS,  # nothing the bot says pings anyone unless it says so
            guild_ready_timeout=discord_settings.guild_ready_timeout,
        )
        self.settings = settings
        self.discord_settings = discord_settings
        self.delivery = Delivery(self)
        self.training = TrainingDelivery(self)
        self._studio_context: contextlib.AbstractAsyncContextManager[Studio] | None = None
        self._studio: Studio | None = None
        self._upload_limits: dict[int, int] = {}
        self.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]
        limit_globally(self.http, GlobalLimiter(discord_settings.global_rate_limit))

    @property
    def studio(self) -> Studio:
        assert self._studio is not None, "the studio opens in setup_hook"
        return self._studio

    async def setup_hook(self) -> None:
        # SIGTERM (docker stop, systemd) closes cleanly: deliveries stop, the database closes.
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGTERM, lambda: asyncio.ensure_future(self.close())
        )
        self._studio_context = open_studio(self.settings)
        self._studio = await self._studio_context.__aenter__()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        guilds = self.discord_settings.guilds
        if guilds:
            for guild_id in guilds:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        resumed = await self.delivery.resume()
        trainings = await self.training.resume()
        log.info(
            "commands synced (%s); %d deliveries and %d training runs resumed",
            guilds or "global",
            resumed,
            trainings,
        )

    async def close(self) -> None:
        await self.delivery.close()
        await self.training.close()
        if self._studio_context is not None:
            await self._studio_context.__aexit__(None, None, None)
            self._studio_context = None
        await super().close()

    async def on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await report(interaction, getattr(error, "original", error))

    # Upload limits: interactions tell the effective limit (boosts included); remember it per guild.

    def remember_limit(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.guild_id is not None:
            self._upload_limits[interaction.guild_id] = interaction.filesize_limit

    def upload_limit(self, guild: discord.Guild | None) -> int:
        if guild is None:
            return 10 * 1024 * 1024
        return self._upload_limits.get(guild.id, guild.filesize_limit)

    async def send_fitted(
        self, channel: discord.abc.Messageable, content: str, original: bytes, data: bytes, filename: str
    ) -> discord.Message:
        """Send an image, re-fitting it smaller whenever Discord answers 413 (never fail on size)."""
        from bot.render import fit_image

        while True:
            try:
                return await channel.send(content, file=discord.File(io.BytesIO(data), filename))
            except discord.HTTPException as error:
                if error.status != 413:
                    raise
                limit = max(1024, len(data) // 2)
                data, filename = await asyncio.to_thread(
                    fit_image, original, limit, filename.rsplit(".", 1)[0]
                )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        discord_settings = load_discord_settings()
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if discord_settings.token is None or not discord_settings.token.get_secret_value().strip():
        print(
            "error: DISCORD_TOKEN is not set: put the bot token of your Discord application in it.",
            file=sys.stderr,
        )
        return 2
    point_at(discord_settings)
    bot = AtelierBot(settings, discord_settings)
    try:
        bot.run(discord_settings.token.get_secret_value(), log_handler=None)
    except discord.LoginFailure:
        print("error: Discord rejected the token in DISCORD_TOKEN (check it, or reset it).", file=sys.stderr)
        return 2
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
