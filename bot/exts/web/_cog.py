"""/web: an ephemeral answer with link buttons to the server's gallery and the person's library.

A command of its own, not a subcommand of /atelier: Discord hides a command from members who lack
its default_member_permissions, and only a top-level command has them, so under /atelier (shown to
server managers only) most members could never see it. Not guild-only: in a DM it says the studio
is per server rather than being missing. Server managers also find it as /atelier web.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.ui.weblinks import send_studio_links

if TYPE_CHECKING:
    from bot.app import AtelierBot


class WebCog(commands.Cog, name="Web"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="web", description="Open the web studio: this server's gallery and your library"
    )
    async def web(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await send_studio_links(interaction, self.bot.settings.api_public_url)
