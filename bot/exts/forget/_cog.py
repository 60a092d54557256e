"""/forget project|all: counted first, erased only once the person presses the red button."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.erasing import delete_posts, summary
from bot.interactions import guarded, reply
from bot.projects import requester_of
from bot.render import NO_PINGS, quote
from studio.removal import ForgetPlan

if TYPE_CHECKING:
    from bot.app import AtelierBot

CONFIRM_SECONDS = 300.0


class ConfirmForget(discord.ui.View):
    """Forget / Keep, for the person who asked only (the message is ephemeral: nobody else sees it)."""

    def __init__(self, bot: AtelierBot, plan: ForgetPlan) -> None:
        super().__init__(timeout=CONFIRM_SECONDS)
        self.bot, self.plan = bot, plan

    @discord.ui.button(label="Forget them", style=discord.ButtonStyle.danger, custom_id="at:forget:yes")
    async def confirm(self, interaction: discord.Interaction[Any], _: discord.ui.Button[Any]) -> None:
        async with guarded(interaction):
            self.stop()
            await interaction.response.edit_message(content="Forgetting…", view=None)
            erased = await self.bot.studio.removal.forget(self.plan)
            await delete_posts(self.bot, erased.posts)
            await interaction.edit_original_response(content=f"🧹 {summary(erased)}")

    @discord.ui.button(label="Keep them", style=discord.ButtonStyle.secondary, custom_id="at:forget:no")
    async def keep(self, interaction: discord.Interaction[Any], _: discord.ui.Button[Any]) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was forgotten.", view=None)


class ForgetCog(commands.Cog):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    @app_commands.command(name="forget", description="Erase your own images: this project, or everything")
    @app_commands.describe(scope="project: this project thread's images; all: every image of yours")
    async def forget(
        self, interaction: discord.Interaction[AtelierBot], scope: Literal["project", "all"] = "project"
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        project = None
        if scope == "project" and isinstance(interaction.channel, discord.Thread):
            project = await self.bot.studio.store.project_by_thread(str(interaction.channel.id))
        plan = await self.bot.studio.removal.prepare_forget(requester, scope, project)
        if not plan.generation_ids:
            await reply(interaction, "You have no finished images here to forget.")
            return
        where = f"project *{quote(plan.project.name, 60)}*" if plan.project else "everything of yours"
        running = f" {plan.still_running} job(s) still running stay." if plan.still_running else ""
        text = (
            f"Forget {where}: {plan.images} image(s) in {len(plan.generation_ids)} result(s), "
            f"from the feed, lineage and storage, and delete their messages? This cannot be undone.{running}"
        )
        await interaction.followup.send(
            text, view=ConfirmForget(self.bot, plan), ephemeral=True, allowed_mentions=NO_PINGS
        )
