"""Generate-suggestion and Shuffle buttons; the message id leads back to the brainstorm."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.interactions import guarded
from studio.ideate import SUGGESTIONS

if TYPE_CHECKING:
    from bot.exts.ideate._cog import IdeateCog


class IdeaButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"at:i:(?P<action>[gs]):(?P<n>\d)"):
    def __init__(self, action: str, index: int = 0) -> None:
        if action == "g":
            button: discord.ui.Button[Any] = discord.ui.Button(
                label=f"Generate {index + 1}", style=discord.ButtonStyle.primary, custom_id=f"at:i:g:{index}"
            )
        else:
            button = discord.ui.Button(
                label="Shuffle", emoji="🔀", style=discord.ButtonStyle.secondary, custom_id="at:i:s:0", row=1
            )
        super().__init__(button)
        self.action = action
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> IdeaButton:
        return cls(match["action"], int(match["n"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog: IdeateCog = interaction.client.get_cog("Ideate")
        async with guarded(interaction):
            if self.action == "g":
                await cog.on_generate(interaction, self.index)
            else:
                await cog.on_shuffle(interaction)


def idea_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for index in range(SUGGESTIONS):
        view.add_item(IdeaButton("g", index))
    view.add_item(IdeaButton("s"))
    return view
