"""/apikey create | list | revoke: the token is shown once, in an ephemeral answer, never logged."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.exts.apikey._threads import ThreadDeliveries
from bot.interactions import reply
from bot.projects import requester_of
from bot.render import quote
from studio.apikeys import MAX_NAME
from studio.entities import ApiKey

if TYPE_CHECKING:
    from bot.app import AtelierBot


def _when(stamp: float | None) -> str:
    return (
        "never" if stamp is None else discord.utils.format_dt(dt.datetime.fromtimestamp(stamp, dt.UTC), "R")
    )


def _line(key: ApiKey) -> str:
    return (
        f"`{key.id}` **{quote(key.name, 60)}** · `{key.prefix}…` · made {_when(key.created_at)} · "
        f"last used {_when(key.last_used_at)}"
    )


@app_commands.guild_only()
class ApiKeyCog(commands.GroupCog, name="apikey", description="Keys for the Atelier REST API"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self.threads = ThreadDeliveries(bot)
        super().__init__()

    async def cog_load(self) -> None:
        self.threads.start()

    async def cog_unload(self) -> None:
        await self.threads.stop()

    @app_commands.command(name="create", description="Make an API key (shown once, only to you)")
    @app_commands.describe(name="A name to recognise it by, e.g. the app that uses it")
    async def create(
        self,
        interaction: discord.Interaction[AtelierBot],
        name: app_commands.Range[str, 1, MAX_NAME] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        minted = await self.bot.studio.keys.mint(requester_of(interaction), name)
        await reply(
            interaction,
            f"🔑 API key **{quote(minted.key.name, 60)}** (id `{minted.key.id}`). Copy it now: it is shown "
            f"only this once.\n```\n{minted.token}\n```\n"
            f"Webhook signing secret (bodies are signed `X-Atelier-Signature: sha256=<HMAC>`):\n"
            f"```\n{minted.webhook_secret}\n```\n"
            "Send it as `Authorization: Bearer <key>`. It acts as you, in this server: your work and "
            f"public images only. Revoke it with `/apikey revoke id:{minted.key.id}`.",
        )

    @app_commands.command(name="list", description="Your API keys")
    async def list_(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        keys = await self.bot.studio.store.keys.live_of(requester_of(interaction).id)
        if not keys:
            await reply(interaction, "You have no API keys. `/apikey create` makes one.")
            return
        await reply(interaction, "**Your API keys**\n" + "\n".join(_line(key) for key in keys))

    @app_commands.command(name="revoke", description="Revoke an API key: it stops working at once")
    @app_commands.describe(id="The key's id (see /apikey list)")
    async def revoke(
        self, interaction: discord.Interaction[AtelierBot], id: app_commands.Range[str, 1, 40]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        key = await self.bot.studio.keys.revoke(requester_of(interaction), id)
        await reply(
            interaction, f"Revoked API key **{quote(key.name, 60)}** (`{key.id}`); it no longer works."
        )

    @revoke.autocomplete("id")
    async def _revoke_ids(
        self, interaction: discord.Interaction[AtelierBot], current: str
    ) -> list[app_commands.Choice[str]]:
        keys = await self.bot.studio.store.keys.live_of(requester_of(interaction).id)
        return [
            app_commands.Choice(name=f"{key.id} · {key.name}"[:100], value=key.id)
            for key in keys
            if current.lower() in f"{key.id} {key.name}".lower()
        ][:25]
