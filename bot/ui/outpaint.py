"""A single image's controls (the U post): Vary (Subtle/Strong/Region), Zoom Out and pan.

Persistent like the result buttons (bot/ui/generation.py): a custom id carries the edit, the
generation and the image's index, and never changes format. Vary (Region) and Custom Zoom open a
form (a modal) for the box or the factor. The generate feature answers them (``ANSWERED_BY``).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from bot.interactions import guarded, report
from bot.ui.generation import ANSWERED_BY
from bot.ui.weblinks import OPEN, add_links
from studio.outpaint import ZOOM_MAX, ZOOM_MIN

# code -> (label, emoji, row): the edit a button asks for
EDITS: dict[str, tuple[str | None, str | None, int]] = {
    "subtle": ("Vary (Subtle)", "🪄", 0),
    "strong": ("Vary (Strong)", "🪄", 0),
    "region": ("Vary (Region)", "🖌️", 0),
    "z1.5": ("Zoom Out 1.5×", "🔍", 1),
    "z2": ("Zoom Out 2×", "🔍", 1),
    "zoom": ("Custom Zoom", "🔍", 1),
    "left": (None, "⬅️", 2),
    "right": (None, "➡️", 2),
    "up": (None, "⬆️", 2),
    "down": (None, "⬇️", 2),
}
FORMS = frozenset({"region", "zoom"})  # these open a modal first


class EditActions(Protocol):
    """What a click needs from the cog named ``ANSWERED_BY``."""

    async def on_edit(
        self,
        interaction: discord.Interaction[Any],
        edit: str,
        generation_id: str,
        index: int,
        value: str | None = None,
    ) -> None: ...

    async def check_single(self, interaction: discord.Interaction[Any]) -> None: ...


def _cog(interaction: discord.Interaction[Any]) -> EditActions:
    cog = interaction.client.get_cog(ANSWERED_BY)  # type: ignore[attr-defined]
    assert cog is not None
    return cog  # type: ignore[no-any-return]


class EditButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"at:e:(?P<edit>[a-z0-9.]+):(?P<gen>[0-9a-f]{32}):(?P<n>\d)",
):
    def __init__(self, edit: str, generation_id: str, index: int = 0) -> None:
        label, emoji, row = EDITS.get(edit, (edit, None, 0))
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=emoji,
                style=discord.ButtonStyle.secondary,
                row=row,
                custom_id=f"at:e:{edit}:{generation_id}:{index}",
            )
        )
        self.edit = edit
        self.generation_id = generation_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> EditButton:
        return cls(match["edit"], match["gen"], int(match["n"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            cog = _cog(interaction)
            if self.edit in FORMS:
                await cog.check_single(interaction)  # no form for a grid
                await interaction.response.send_modal(EditForm(self.edit, self.generation_id, self.index))
                return
            await cog.on_edit(interaction, self.edit, self.generation_id, self.index)


class EditForm(discord.ui.Modal):
    """Vary (Region)'s box or Custom Zoom's factor: one field."""

    def __init__(self, edit: str, generation_id: str, index: int) -> None:
        region = edit == "region"
        super().__init__(
            title="Vary (Region)" if region else "Custom Zoom",
            custom_id=f"at:em:{edit}:{generation_id}:{index}",
            timeout=900,
        )
        self.edit, self.generation_id, self.index = edit, generation_id, index
        self.field: discord.ui.TextInput[EditForm] = discord.ui.TextInput(
            label="Box: x, y, width, height in percent" if region else "Zoom out by",
            placeholder="25, 25, 50, 50" if region else f"{ZOOM_MIN:g} to {ZOOM_MAX:g}, e.g. 1.75",
            default="25, 25, 50, 50" if region else "1.75",
            max_length=40,
            custom_id=f"at:em:{'box' if region else 'factor'}",
        )
        self.add_item(self.field)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            await _cog(interaction).on_edit(
                interaction, self.edit, self.generation_id, self.index, self.field.value
            )

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]
        await report(interaction, error)


def single_image_view(generation_id: str, index: int, page: str | None = None) -> discord.ui.View:
    """Under a posted single image: the three Vary buttons, the zooms, then the four pans; and
    ``page``, the image's page in the web studio where it has a public URL (bot/ui/weblinks.py)."""
    view = discord.ui.View(timeout=None)
    for edit in EDITS:
        view.add_item(EditButton(edit, generation_id, index))
    if page is not None:
        add_links(view, [(OPEN, page)], first_row=max(row for _, _, row in EDITS.values()) + 1)
    return view
