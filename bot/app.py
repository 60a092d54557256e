"""The bot: wiring, command sync, the tree error handler, and `atelier bot` / `python -m bot`."""

from __future__ import annotations

import asyncio
import contextlib
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
from bot.pending import Pending
from bot.ratelimit import GlobalLimiter, limit_globally
from bot.render import DEFAULT_UPLOAD_LIMIT, NO_PINGS, limit_after_413
from bot.settings import DiscordSettings, load_discord_settings
from bot.training_delivery import TrainingDelivery
from studio.app import Studio, open_studio
from studio.errors import StudioError
from studio.health_server import HealthServer, start_health_server
from studio.jobs import QUEUES
from studio.jsonlog import configure_logging, tag_logs
from studio.metrics import count_discord_429s, refresh_queue_depths
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
    "bot.exts.forget",
    "bot.exts.describe",
    "bot.exts.evolve",
    "bot.exts.web",
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
        # /evolve: a poll's end arrives as a MESSAGE_UPDATE (final results) and a poll-result
        # message; both need GUILD_MESSAGES (not privileged: without Message Content, others'
        # messages still arrive blank).
        intents.guild_messages = True
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
        self.pending = Pending(self)
        self._studio_context: contextlib.AbstractAsyncContextManager[Studio] | None = None
        self._studio: Studio | None = None
        self._upload_limits: dict[int, int] = {}
        self._side_writes: set[asyncio.Task[None]] = set()
        self._health: HealthServer | None = None
        self.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]
        self.tree.interaction_check = self._tag_logs  # type: ignore[method-assign]
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
        count_discord_429s()  # from discord.py's HTTP client log (atelier_discord_rate_limited)
        self._health = await start_health_server(
            self.settings, ready=self.is_ready, before_scrape=self._read_queue_depths
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
        # Before any delivery resumes: what each server allows, so files fit at the first try.
        for server, size in (await self.studio.store.interactions.upload_limits()).items():
            self._upload_limits[int(server)] = size
        resumed = await self.delivery.resume()
        trainings = await self.training.resume()
        interrupted = await self.pending.resume()
        log.info(
            "commands synced (%s); %d deliveries, %d training runs and %d commands resumed",
            guilds or "global",
            resumed,
            trainings,
            interrupted,
        )

    # The servers the bot is in, for the web studio: a person sees a server there only if both
    # they and the bot are in it. on_ready runs again after every reconnection (a full refresh).
    async def on_ready(self) -> None:
        try:
            await self.studio.store.web.set_bot_guilds({str(g.id): g.name for g in self.guilds})
        except Exception:
            log.exception("recording the bot's servers failed")

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.studio.store.web.bot_joined(str(guild.id), guild.name)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.studio.store.web.bot_left(str(guild.id))

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: messages (received for /evolve's poll results) are never parsed."""

    async def _tag_logs(self, interaction: discord.Interaction[Any]) -> bool:
        """Every command runs in a task of its own: its log lines carry its guild and user."""
        tag_logs(guild_id=interaction.guild_id, user_id=interaction.user.id)
        return True

    async def _read_queue_depths(self) -> None:
        if self._studio is not None:
            await refresh_queue_depths(self._studio.queue.depth, QUEUES)

    async def close(self) -> None:
        await self.pending.close()
        await self.delivery.close()
        await self.training.close()
        if self._studio_context is not None:
            await self._studio_context.__aexit__(None, None, None)
            self._studio_context = None
        if self._health is not None:
            await self._health.stop()
            self._health = None
        await super().close()

    async def on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await report(interaction, getattr(error, "original", error))

    async def channel_by_id(self, channel_id: int) -> Any:
        """A channel or thread from the cache, else from Discord (e.g. just after a start)."""
        return self.get_channel(channel_id) or await self.fetch_channel(channel_id)

    # Upload limits: interactions tell the effective limit (boosts included); remember it per
    # guild, durably: a restarted bot fits resumed deliveries before the first try.

    def remember_limit(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.guild_id is not None:
            self.remember_guild_limit(interaction.guild_id, interaction.filesize_limit)

    def remember_guild_limit(self, guild_id: int, size: int) -> None:
        if self._upload_limits.get(guild_id) == size:
            return
        self._upload_limits[guild_id] = size
        task = asyncio.create_task(self._store_limit(guild_id, size))
        self._side_writes.add(task)
        task.add_done_callback(self._side_writes.discard)

    async def _store_limit(self, guild_id: int, size: int) -> None:
        try:
            await self.studio.store.interactions.set_upload_limit(str(guild_id), size)
        except Exception:  # a cache of Discord's answer: losing it costs one re-fit, not a result
            log.warning("could not remember the upload limit of guild %s", guild_id, exc_info=True)

    def upload_limit(self, guild: discord.Guild | None) -> int:
        if guild is None:
            return DEFAULT_UPLOAD_LIMIT
        return self._upload_limits.get(guild.id, guild.filesize_limit)  # its boost tier's, else 10 MiB

    def limit_after_413(self, guild: discord.Guild | None, sent: int, error: discord.HTTPException) -> int:
        """Discord refused ``sent`` bytes: the real limit is lower than we knew; remember it."""
        limit = limit_after_413(sent, error.text)
        if guild is not None:
            self.remember_guild_limit(guild.id, limit)
        return limit


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
    configure_logging(settings.log_format, secrets=[discord_settings.token.get_secret_value()])
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
