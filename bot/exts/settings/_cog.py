"""/settings show | set | reset | server | server-reset."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import reply
from bot.projects import requester_of
from studio.defaults import Defaults
from studio.fairness import LANES, Lane
from studio.families import ASPECTS

if TYPE_CHECKING:
    from bot.app import AtelierBot

ASPECT_CHOICES = [app_commands.Choice(name=a, value=a) for a in ASPECTS]
LANE_CHOICES = [app_commands.Choice(name=lane, value=lane) for lane in LANES]
P = ParamSpec("P")


def _defaults_command(
    save: Callable[Concatenate[SettingsCog, discord.Interaction[Any], P], Coroutine[Any, Any, None]],
    name: str,
    description: str,
    *,
    server: bool,
) -> app_commands.Command[SettingsCog, P, None]:
    """/settings set or /settings server: both take ``save``'s options (discord.py reads them
    from its signature) and say their scope in their extras."""
    command: app_commands.Command[SettingsCog, P, None] = app_commands.Command(
        name=name, description=description, callback=save, extras={"server": server}
    )
    return app_commands.choices(aspect=ASPECT_CHOICES, lane=LANE_CHOICES)(command)


class SettingsCog(commands.GroupCog, name="settings", description="Your defaults for new generations"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        super().__init__()

    async def _save(
        self,
        interaction: discord.Interaction[AtelierBot],
        model: str | None = None,
        aspect: app_commands.Choice[str] | None = None,
        batch: app_commands.Range[int, 1, 8] | None = None,
        style: str | None = None,
        private: bool | None = None,
        lane: app_commands.Choice[str] | None = None,
        vary_subtle: float | None = None,  # Vary (Subtle)'s strength, 0.05-1 (checked in words)
        vary_strong: float | None = None,
    ) -> None:
        """/settings set and /settings server: the same options, for you or for this server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.command is not None
        server: bool = interaction.command.extras["server"]
        changes = Defaults(
            model=model,
            aspect=aspect.value if aspect else None,
            batch=batch,
            style=style,
            private=private,
            lane=cast(Lane, lane.value) if lane else None,  # relax: runs when no fast job waits
            vary_subtle=vary_subtle,
            vary_strong=vary_strong,
        )
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

    set_ = _defaults_command(_save, "set", "Set your defaults for new generations", server=False)

    @app_commands.command(name="reset", description="Forget your defaults")
    async def reset(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.studio.preferences.reset(requester_of(interaction))
        await reply(interaction, "Your defaults are cleared.")

    server = _defaults_command(_save, "server", "Set this server's defaults (admins)", server=True)

    @app_commands.command(
        name="previews", description="Live previews on running jobs here: on or off (admins)"
    )
    @app_commands.describe(state="on: status messages show the current step every few seconds")
    @app_commands.choices(state=[app_commands.Choice(name=s, value=s) for s in ("on", "off")])
    async def previews(
        self, interaction: discord.Interaction[AtelierBot], state: app_commands.Choice[str]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        on = state.value == "on"
        await self.bot.studio.preferences.change(
            requester_of(interaction), Defaults(previews=on), server=True
        )
        said = "now show" if on else "no longer show"
        await reply(interaction, f"Saved. Running jobs on this server {said} live previews.")

    @app_commands.command(name="server-reset", description="Forget this server's defaults (admins)")
    async def server_reset(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.studio.preferences.reset(requester_of(interaction), server=True)
        await reply(interaction, "This server's defaults are cleared.")
