"""The owner's "End voting now" button under a round's header (the poll itself has none)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.interactions import guarded

if TYPE_CHECKING:
    from bot.exts.evolve._cog import EvolveCog


class EndVoteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"at:ev:end:(?P<id>[0-9a-f]{32})"
):
    def __init__(self, evolution_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="End voting now",
                emoji="⏹️",
                style=discord.ButtonStyle.secondary,
                custom_id=f"at:ev:end:{evolution_id}",
            )
        )
        self.evolution_id = evolution_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> EndVoteButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog: EvolveCog = interaction.client.get_cog("Evolve")
        async with guarded(interaction):
            await cog.on_end_pressed(interaction, self.evolution_id)


def round_view(evolution_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(EndVoteButton(evolution_id))
    return view
