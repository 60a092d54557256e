"""/ideate: decode, call the studio, render the brainstorm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.exts.ideate._views import idea_view
from bot.interactions import reply
from bot.pending import Command
from bot.projects import post_status, project_target, requester_of
from studio.ideate import GROUPS, MAX_CONCEPT_CHARS, Brainstorm

if TYPE_CHECKING:
    from bot.app import AtelierBot

GROUP_TITLES = {
    "subject": "Subject",
    "style": "Style",
    "mood": "Mood",
    "lighting": "Lighting",
    "technical": "Technical",
}


def brainstorm_embed(idea: Brainstorm) -> discord.Embed:
    lines = [f"**{n + 1}.** {render.quote(prompt, 400)}" for n, prompt in enumerate(idea.prompts)]
    embed = discord.Embed(
        title=f"💡 {render.quote(idea.concept, 200)}",
        description="**Suggested prompts**\n" + "\n".join(lines),
        colour=0xF2B134,
    )
    for group in GROUPS:
        embed.add_field(name=GROUP_TITLES[group], value=" · ".join(idea.keywords[group]), inline=False)
    embed.set_footer(text=f"seed {idea.seed} · Generate a suggestion, or Shuffle for new ones")
    return embed


class IdeateCog(commands.Cog, name="Ideate"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="ideate", description="Brainstorm keywords and prompts from a one-sentence concept"
    )
    @app_commands.describe(concept="Your idea in one sentence", seed="Same seed, same brainstorm")
    async def ideate(
        self,
        interaction: discord.Interaction[AtelierBot],
        concept: app_commands.Range[str, 1, MAX_CONCEPT_CHARS],
        seed: app_commands.Range[int, 0, 2**31 - 1] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        idea = self.bot.studio.ideas.ideate(render.strip_mentions(concept), seed)
        target, project = await project_target(
            self.bot, interaction, requester, idea.concept, command="/ideate"
        )
        message = await target.send(
            embed=brainstorm_embed(idea), view=idea_view(), allowed_mentions=render.NO_PINGS
        )
        await self.bot.studio.ideas.record(requester, project, str(message.id), idea)
        await reply(interaction, f"Brainstorm ready in {target.mention}.")

    async def cog_load(self) -> None:
        self.bot.pending.handle("ideate-generate", self._generate)

    async def on_generate(self, interaction: discord.Interaction[Any], index: int) -> None:
        assert interaction.message is not None
        # It starts a generation: recorded before "thinking…", finished after a restart (bot/pending.py).
        said = {"message": str(interaction.message.id), "index": index}
        command = await self.bot.pending.acknowledge(interaction, "ideate-generate", said)
        if command is not None:
            await self.bot.pending.run(command)

    async def _generate(self, command: Command) -> None:
        said = command.options
        channel = await command.channel()
        await command.working_in(channel)
        studio = self.bot.studio
        plan = await studio.ideas.prepare(command.requester, str(said["message"]), int(said["index"]))
        generation = await studio.generations.start(
            plan, deliver_to=str(channel.id), generation_id=command.generation_id
        )
        await post_status(self.bot, channel, generation)
        await command.answer(f"Generating suggestion {int(said['index']) + 1} — queued.")

    async def on_shuffle(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer()  # acknowledged; the message itself changes below
        assert interaction.message is not None
        idea = await self.bot.studio.ideas.shuffle(requester_of(interaction), str(interaction.message.id))
        await interaction.edit_original_response(embed=brainstorm_embed(idea), view=idea_view())
