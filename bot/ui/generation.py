"""A generation's status and result controls: Cancel, U/V/🔁 and the favourites menu.

Persistent: their custom ids carry all they need, so they outlive restarts (and messages posted
long ago carry them: the formats never change). The shell posts them (status messages, results);
the generate feature answers them, reached by cog name when clicked, and registers them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import discord

from bot.interactions import guarded
from bot.ui.weblinks import OPEN, add_links, link_button

ACTIONS = {"u": "post image", "v": "variations", "r": "reroll", "x": "cancel"}
ANSWERED_BY = "Generate"  # the cog that answers these controls
MAX_ROWS = 5  # action rows a message may have


class ResultActions(Protocol):
    """What a click needs from the cog named ``ANSWERED_BY``."""

    async def on_action(
        self, interaction: discord.Interaction[Any], action: str, generation_id: str, index: int
    ) -> None: ...

    async def on_favourites(
        self, interaction: discord.Interaction[Any], generation_id: str, count: int, picked: list[int]
    ) -> None: ...


def _cog(interaction: discord.Interaction[Any]) -> ResultActions:
    cog = interaction.client.get_cog(ANSWERED_BY)  # type: ignore[attr-defined]
    assert cog is not None
    return cog  # type: ignore[no-any-return]


class ActionButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"at:(?P<action>[uvrx]):(?P<gen>[0-9a-f]{32}):(?P<n>\d)",
):
    def __init__(self, action: str, generation_id: str, index: int = 0, row: int | None = None) -> None:
        style = discord.ButtonStyle.secondary
        label: str | None = f"{action.upper()}{index + 1}"
        emoji = None
        if action == "r":
            label, emoji, style = None, "🔁", discord.ButtonStyle.primary
        elif action == "x":
            label, emoji, style = "Cancel", "❌", discord.ButtonStyle.danger
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=emoji,
                style=style,
                row=row,
                custom_id=f"at:{action}:{generation_id}:{index}",
            )
        )
        self.action = action
        self.generation_id = generation_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ActionButton:
        return cls(match["action"], match["gen"], int(match["n"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            await _cog(interaction).on_action(interaction, self.action, self.generation_id, self.index)


class FavouriteSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=r"at:f:(?P<gen>[0-9a-f]{32}):(?P<n>\d)",
):
    def __init__(self, generation_id: str, count: int, row: int | None = None) -> None:
        options = [
            discord.SelectOption(label=f"Image {i + 1}", value=str(i), emoji="⭐") for i in range(count)
        ]
        super().__init__(
            discord.ui.Select(
                custom_id=f"at:f:{generation_id}:{count}",
                placeholder="⭐ Pick your favourites",
                min_values=0,
                max_values=count,
                options=options,
                row=row,
            )
        )
        self.generation_id = generation_id
        self.count = count

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FavouriteSelect:
        return cls(match["gen"], int(match["n"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            picked = sorted(int(v) for v in self.item.values)
            await _cog(interaction).on_favourites(interaction, self.generation_id, self.count, picked)


def status_view(generation_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ActionButton("x", generation_id))
    return view


def result_view(generation_id: str, count: int, pages: Sequence[str] = ()) -> discord.ui.View:
    """U1..Un, V1..Vn and 🔁 five to a row, then the favourites menu: at most 5 rows for 8 images.

    ``pages``: the images' pages in the web studio (bot/ui/weblinks.py), if it has a public URL.
    Each image gets its link in rows of their own above the menu where the message has room (up
    to 5 images); a bigger batch gets one "Open in studio", to its first image, after 🔁.
    """
    view = discord.ui.View(timeout=None)
    buttons: list[discord.ui.Item[Any]] = [ActionButton("u", generation_id, i) for i in range(count)]
    buttons += [ActionButton("v", generation_id, i) for i in range(count)]
    buttons.append(ActionButton("r", generation_id))
    per_image = len(pages) > 1 and _rows(len(buttons)) + _rows(len(pages)) + 1 <= MAX_ROWS
    if pages and not per_image:
        buttons += [b for b in [link_button(OPEN, pages[0])] if b is not None]
    for position, button in enumerate(buttons):
        button.row = position // 5
        view.add_item(button)
    links = [(f"Studio {i + 1}", url) for i, url in enumerate(pages)] if per_image else []
    add_links(view, links, first_row=_rows(len(buttons)))
    menu_row = _rows(len(buttons)) + _rows(len(links))
    view.add_item(FavouriteSelect(generation_id, count, row=menu_row))
    return view


def _rows(buttons: int) -> int:
    return (buttons + 4) // 5
