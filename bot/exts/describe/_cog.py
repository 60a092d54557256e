"""/describe and its Generate buttons. The prompts live in the answer's own text, so a button
needs no stored state: it reads its prompt back from the message it is on (persistent ids)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.interactions import guarded, reply
from bot.links import attachments_withheld, linked_message, looks_like_image, read_upload
from studio.describe import PROMPTS
from studio.errors import StudioError

if TYPE_CHECKING:
    from bot.app import AtelierBot

HEADER = "🔎 **Four prompts for this image** · press a number to generate it"
LINE = re.compile(r"^\*\*(?P<n>\d)\.\*\* (?P<prompt>.+)$", re.MULTILINE)


def describe_text(prompts: list[str]) -> str:
    return "\n".join([HEADER, *(f"**{n + 1}.** {prompt}" for n, prompt in enumerate(prompts))])


def prompt_in(content: str, index: int) -> str | None:
    """Prompt ``index`` (0-based) of a /describe answer's text."""
    for found in LINE.finditer(content):
        if int(found["n"]) == index + 1:
            return found["prompt"].strip()
    return None


class DescribeButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"at:d:(?P<n>\d)"):
    def __init__(self, index: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=str(index + 1), emoji="🎨", style=discord.ButtonStyle.primary, custom_id=f"at:d:{index}"
            )
        )
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> DescribeButton:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        cog: DescribeCog = interaction.client.get_cog("Describe")
        async with guarded(interaction):
            await cog.on_generate(interaction, self.index)


def describe_view(count: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for index in range(count):
        view.add_item(DescribeButton(index))
    return view


class DescribeCog(commands.Cog, name="Describe"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    @app_commands.command(name="describe", description="Four prompts suggested from an image")
    @app_commands.describe(
        image="The image to describe (PNG, JPEG, WebP)",
        link="Or a link to a message of mine with an image (Copy Message Link)",
    )
    async def describe(
        self,
        interaction: discord.Interaction[AtelierBot],
        image: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        if (image is None) == (link is None):
            raise StudioError("Give me one image: attach it as `image`, or paste a message link as `link`.")
        describer = self.bot.studio.describer
        if describer.configured() is None:  # before anything is downloaded
            raise StudioError(
                "/describe is not available here: no describe model is configured (the operator adds one)."
            )
        attachment = image if image is not None else await self._linked_image(interaction, link or "")
        data = await read_upload(attachment, self.bot.studio.settings.max_upload_bytes)
        prompts = await describer.describe(data)
        channel = interaction.channel
        assert isinstance(channel, discord.abc.Messageable)
        message = await channel.send(
            describe_text(prompts), view=describe_view(len(prompts)), allowed_mentions=render.NO_PINGS
        )
        await reply(interaction, f"{len(prompts)} prompts are ready: {message.jump_url}")

    async def _linked_image(self, interaction: discord.Interaction[Any], link: str) -> discord.Attachment:
        message = await linked_message(self.bot, interaction, link)
        images = [a for a in message.attachments if looks_like_image(a)]
        if not images and attachments_withheld(self.bot, message):
            raise StudioError(
                "I can't see the images in other people's messages from a link (Discord shows them to "
                "apps only when picked directly); attach the image to /describe instead."
            )
        if not images:
            raise StudioError("That message has no image to describe.")
        return images[0]

    async def on_generate(self, interaction: discord.Interaction[Any], index: int) -> None:
        """A Generate button: /imagine with that prompt, in a new project thread as /imagine does."""
        assert interaction.message is not None
        prompt = prompt_in(interaction.message.content, index)
        if prompt is None or index >= PROMPTS:
            raise StudioError("That suggestion is no longer on this message.")
        command = await self.bot.pending.acknowledge(interaction, "imagine", {"prompt": prompt})
        if command is not None:
            await self.bot.pending.run(command)
