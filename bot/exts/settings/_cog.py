"""/settings show | set | reset | server | server-reset."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import reply
from bot.projects import requester_of
from studio.defaults import Defaults
from studio.families import ASPECTS

if TYPE_CHECKING:
    from bot.app import AtelierBot

ASPECT_CHOICES = [app_commands.Choice(name=a, value=a) for a in ASPECTS]


class SettingsCog(commands.GroupCog, name="settings", description="Your defaults for new generations"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        super().__init__()

    async def _save(
        self,
        interaction: discord.Interaction[AtelierBot],
        server: bool,
        changes: Defaults,
        aspect: app_commands.Choice[str] | None,
    ) -> None:
        # The two commands keep their own signatures: discord.py builds the options from them.
        await interaction.response.defer(ephemeral=True, thinking=True)
        if aspect is not None:
            changes = changes.model_copy(update={"aspect": aspect.value})
        updated = await self.bot.studio.preferences.change(requester_of(interaction), changes, server=server)
        whose = "This server's" if server else "Your"
        await reply(interaction, f"Saved. {whose} defaults: {updated.describe()}.")

    @app_commands.command(name="show", description="Your defaults and this server's")
    async def show(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        mine = await self.bot.studio.preferences.stored(requester)
        server = await self.bot.studio.preferences.stored(requester, server=True)
        await reply(
            interaction,
            f"**Your defaults:** {mine.describe()}\n**This server's defaults:** {server.describe()}\n"
            "Yours win over the server's; a flag in the prompt or an option wins over both.",
        )

    @app_commands.command(name="set", description="Set your defaults for new generations")
    @app_commands.choices(aspect=ASPECT_CHOICES)
    async def set_(
        self,
        interaction: discord.Interaction[AtelierBot],
        model: str | None = None,
        aspect: app_commands.Choice[str] | None = None,
        batch: app_commands.Range[int, 1, 8] | None = None,
        style: str | None = None,
        private: bool | None = None,
    ) -> None:
        await self._save(
            interaction, False, Defaults(model=model, batch=batch, style=style, private=private), aspect
        )

    @app_commands.command(name="reset", description="Forget your defaults")
    async def reset(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.studio.preferences.reset(requester_of(interaction))
        await reply(interaction, "Your defaults are cleared.")

    @app_commands.command(name="server", description="Set this server's defaults (admins)")
    @app_commands.choices(aspect=ASPECT_CHOICES)
    async def server(
        self,
        interaction: discord.Interaction[AtelierBot],
        model: str | None = None,
        aspect: app_commands.Choice[str] | None = None,
        batch: app_commands.Range[int, 1, 8] | None = None,
        style: str | None = None,
        private: bool | None = None,
    ) -> None:
        await self._save(
            interaction, True, Defaults(model=model, batch=batch, style=style, private=private), aspect
        )

    @app_commands.command(name="server-reset", description="Forget this server's defaults (admins)")
    async def server_reset(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.studio.preferences.reset(requester_of(interaction), server=True)
        await reply(interaction, "This server's defaults are cleared.")
