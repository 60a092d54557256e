"""The Remix button, on shared results and in the /browse feed: opens the remix form.

Persistent (its custom id names the image and never changes format). The remix feature answers
it, reached by cog name when clicked, and registers it.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from bot.interactions import guarded

REMIX = "🔀"
ANSWERED_BY = "atelier"  # the cog that answers the button


class Remixer(Protocol):
    """What a click needs from the cog named ``ANSWERED_BY``."""

    async def open_remix(
        self, interaction: discord.Interaction[Any], generation_id: str, index: int
    ) -> None: ...


class RemixButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"at:m:(?P<gen>[0-9a-f]{32}):(?P<n>\d)"
):
    def __init__(
        self, generation_id: str, index: int, label: str | None = None, row: int | None = None
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or f"Remix {index + 1}",
                emoji=REMIX,
                style=discord.ButtonStyle.secondary,
                custom_id=f"at:m:{generation_id}:{index}",
                row=index // 5 if row is None else row,
            )
        )
        self.generation_id, self.index = generation_id, index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RemixButton:
        return cls(match["gen"], int(match["n"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog: Remixer = interaction.client.get_cog(ANSWERED_BY)
        async with guarded(interaction):
            await cog.open_remix(interaction, self.generation_id, self.index)
