"""/web: an ephemeral answer with link buttons to the server's gallery and the person's library.

A command of its own, not a subcommand of /atelier: Discord hides a command from members who lack
its default_member_permissions, and only a top-level command has them, so under /atelier (shown to
server managers only) most members could never see it. Not guild-only: in a DM it says the studio
is per server rather than being missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.render import NO_PINGS, quote
from bot.ui.weblinks import add_links, gallery_url, library_url, studio_base

if TYPE_CHECKING:
    from bot.app import AtelierBot

IN_A_DM = (
    "The web studio is per server: use `/web` in a server you share with me, and I'll link that "
    "server's gallery and your library there."
)
NOT_SET_UP = (
    "The web studio isn't set up for this bot yet. (Whoever runs Atelier: set `ATELIER_API_PUBLIC_URL` "
    "to the address where people's browsers reach `atelier api`.)"
)


def studio_answer(
    public_url: str | None, server_id: int | None, server_name: str
) -> tuple[str, list[tuple[str, str]]]:
    """What /web says, and its ``(label, url)`` links."""
    if server_id is None:
        return IN_A_DM, []
    base = studio_base(public_url)
    if base is None:
        return NOT_SET_UP, []
    server = str(server_id)
    text = (
        f"**Atelier's web studio** for {quote(server_name, 100)}: the community gallery, and your "
        "library (your projects and images, private ones shown only to you). Sign in with Discord."
    )
    return text, [("Gallery", gallery_url(base, server)), ("Your library", library_url(base, server))]


class WebCog(commands.Cog, name="Web"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="web", description="Open the web studio: this server's gallery and your library"
    )
    async def web(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        name = interaction.guild.name if interaction.guild is not None else ""
        text, links = studio_answer(self.bot.settings.api_public_url, interaction.guild_id, name)
        view = discord.ui.View(timeout=None)
        add_links(view, links, first_row=0)
        await interaction.followup.send(text, view=view, ephemeral=True, allowed_mentions=NO_PINGS)
