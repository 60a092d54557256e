"""/browse [period] [model] [style]: top public creations by favourites and remixes, paginated."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.interactions import guarded, reply
from bot.projects import requester_of
from bot.ui.images import age_restricted
from bot.ui.remix import RemixButton
from studio.community import BROWSE_PAGE, PERIODS, FeedEntry

if TYPE_CHECKING:
    from bot.app import AtelierBot

PERIOD_NAMES = {"day": "today", "week": "this week", "month": "this month", "all": "all time"}


def feed_text(guild_id: int | None, entries: list[FeedEntry], period: str, page: int, filters: str) -> str:
    head = f"**Community feed** · {PERIOD_NAMES[period]}{filters} · page {page + 1}"
    if not entries:
        return head + "\nNothing here yet: favourite (⭐) and remix public creations to rank them."
    lines = [head]
    for rank, entry in enumerate(entries, start=page * BROWSE_PAGE + 1):
        image = entry.image
        where = render.where_shown(entry.posts, image.index, guild_id)
        lines.append(
            f"{rank}. ⭐ {entry.favourites} · 🔀 {entry.remixes} — image {image.index + 1} of "
            f"*{render.quote(image.recipe.prompt, 70)}* by {render.credit(image.owner_id)} {where}"
        )
    return "\n".join(lines)


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"at:b:(?P<period>[a-z]+):(?P<page>\d+):(?P<model>[^:]*):(?P<style>[^:]*)",
):
    def __init__(
        self, period: str, page: int, model: str, style: str, label: str, disabled: bool = False
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                style=discord.ButtonStyle.secondary,
                custom_id=f"at:b:{period}:{page}:{model}:{style}",
                disabled=disabled,
            )
        )
        self.period, self.page, self.model, self.style = period, page, model, style

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PageButton:
        return cls(match["period"], int(match["page"]), match["model"], match["style"], "")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog: BrowseCog = interaction.client.get_cog("Browse")
        async with guarded(interaction):
            await interaction.response.defer()
            text, view = await cog.page(
                interaction, self.period, self.page, self.model or None, self.style or None
            )
            await interaction.edit_original_response(content=text[:2000], view=view)


class BrowseCog(commands.Cog, name="Browse"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    async def page(
        self,
        interaction: discord.Interaction[Any],
        period: str,
        page: int,
        model: str | None,
        style: str | None,
    ) -> tuple[str, discord.ui.View | None]:
        # Flagged images (content policy) are listed only in a channel Discord marks age-restricted.
        entries = await self.bot.studio.community.browse(
            requester_of(interaction), period, model, style, page, age_restricted(interaction.channel)
        )
        filters = "".join(
            f" · {name} {value}" for name, value in (("model", model), ("style", style)) if value
        )
        text = feed_text(interaction.guild_id, entries, period, page, filters)
        view = discord.ui.View(timeout=None)
        ids = (period, model or "", style or "")
        if len(f"at:b:{period}:{page + 1}:{ids[1]}:{ids[2]}") > 100:
            return text, None  # filters too long to page through buttons
        view.add_item(PageButton(period, max(0, page - 1), ids[1], ids[2], "◀ Previous", disabled=page == 0))
        full = len(entries) == BROWSE_PAGE
        view.add_item(PageButton(period, page + 1, ids[1], ids[2], "Next ▶", disabled=not full))
        for rank, entry in enumerate(entries, start=page * BROWSE_PAGE + 1):  # a Remix action per entry
            view.add_item(
                RemixButton(entry.image.generation_id, entry.image.index, label=f"Remix #{rank}", row=1)
            )
        return text, view

    @app_commands.command(name="browse", description="The community feed: top public creations")
    @app_commands.describe(period="How far back", model="Only this model", style="Only this style")
    @app_commands.choices(period=[app_commands.Choice(name=PERIOD_NAMES[p], value=p) for p in PERIODS])
    async def browse(
        self,
        interaction: discord.Interaction[AtelierBot],
        period: app_commands.Choice[str] | None = None,
        model: app_commands.Range[str, 1, 64] | None = None,
        style: app_commands.Range[str, 1, 32] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        text, view = await self.page(interaction, period.value if period else "week", 0, model, style)
        if view is None:
            await reply(interaction, text)
        else:
            await interaction.followup.send(
                text[:2000], view=view, ephemeral=True, allowed_mentions=render.NO_PINGS
            )
