"""The grade preview's buttons: Apply (the full-size grade) and Adjust (a form with the sliders)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.interactions import guarded, report
from studio.finishing import GRADE_SLIDERS, Grade

if TYPE_CHECKING:
    from bot.exts.finish._cog import FinishCog


def _cog(interaction: discord.Interaction[Any]) -> FinishCog:
    cog = interaction.client.get_cog("Finish")  # type: ignore[attr-defined]
    assert cog is not None
    return cog  # type: ignore[no-any-return]


class GradeButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"at:g:(?P<action>[aj]):(?P<finish>[0-9a-f]{32})"
):
    def __init__(self, action: str, finish_id: str) -> None:
        label, style = (
            ("Apply", discord.ButtonStyle.success)
            if action == "a"
            else ("Adjust", discord.ButtonStyle.secondary)
        )
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji="✅" if action == "a" else "🎚️",
                style=style,
                custom_id=f"at:g:{action}:{finish_id}",
            )
        )
        self.action = action
        self.finish_id = finish_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> GradeButton:
        return cls(match["action"], match["finish"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            if self.action == "a":
                await _cog(interaction).apply_grade(interaction, self.finish_id)
            else:
                await _cog(interaction).adjust_grade(interaction, self.finish_id)


def grade_view(finish_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(GradeButton("a", finish_id))
    view.add_item(GradeButton("j", finish_id))
    return view


class AdjustModal(discord.ui.Modal, title="Adjust the grade"):
    """The preset and the first four sliders as numbers (a modal holds five inputs); the rest are
    kept as they were."""

    FIELDS = ("preset", *list(GRADE_SLIDERS)[:4])

    def __init__(self, cog: FinishCog, finish_id: str, grade: Grade) -> None:
        super().__init__(custom_id=f"at:gm:{finish_id}", timeout=900)
        self.cog, self.finish_id, self.grade = cog, finish_id, grade
        self.inputs: dict[str, discord.ui.TextInput[AdjustModal]] = {}
        for name in self.FIELDS:
            value = getattr(grade, name)
            text = (value or "none") if name == "preset" else f"{value:g}"
            field: discord.ui.TextInput[AdjustModal] = discord.ui.TextInput(
                label=name.capitalize(), default=str(text), max_length=20, custom_id=f"at:gm:{name}"
            )
            self.inputs[name] = field
            self.add_item(field)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            await self.cog.regrade(
                interaction, self.finish_id, self.grade, {k: v.value for k, v in self.inputs.items()}
            )

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]
        await report(interaction, error)
