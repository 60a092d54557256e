"""The training status message's Cancel button (persistent: its custom id names the run)."""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.interactions import guarded, reply
from bot.projects import requester_of


class CancelTrainingButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"at:t:x:(?P<run>[0-9a-f]{32})"
):
    def __init__(self, lora_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel training",
                emoji="❌",
                style=discord.ButtonStyle.danger,
                custom_id=f"at:t:x:{lora_id}",
            )
        )
        self.lora_id = lora_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CancelTrainingButton:
        return cls(match["run"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            await interaction.response.defer(ephemeral=True, thinking=True)
            lora = await interaction.client.studio.forge.cancel(requester_of(interaction), self.lora_id)
            await reply(interaction, f"Stopping the training of `{lora.name}`…")


def training_view(lora_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelTrainingButton(lora_id))
    return view
