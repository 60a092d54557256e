"""/moodboard add | show | remove | clear, in a project thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions import reply
from bot.links import MAX_IMAGES_PER_MESSAGE, linked_images, looks_like_image, read_upload
from bot.projects import requester_of
from bot.ui.images import Picture, send_images
from studio.entities import Project
from studio.errors import StudioError

if TYPE_CHECKING:
    from bot.app import AtelierBot


class MoodboardCog(commands.GroupCog, name="moodboard", description="A project's board of reference images"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        super().__init__()
        self.add_menu = app_commands.ContextMenu(name="Add to mood board", callback=self.add_message)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.add_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.add_menu.name, type=self.add_menu.type)

    async def add_message(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """The "Add to mood board" message menu: that message's images join this project's board."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        project = await self._project(interaction)
        limit = self.bot.studio.settings.max_upload_bytes
        images = [a for a in message.attachments if looks_like_image(a)][:MAX_IMAGES_PER_MESSAGE]
        if not images:
            raise StudioError("That message has no images.")
        uploads = [await read_upload(a, limit) for a in images]
        count = await self.bot.studio.boards.add(requester_of(interaction), project, uploads)
        await reply(interaction, f"Added {len(uploads)} image(s); the board holds {count}.")

    async def _project(self, interaction: discord.Interaction[Any]) -> Project:
        channel = interaction.channel
        project = None
        if isinstance(channel, discord.Thread):
            project = await self.bot.studio.store.project_by_thread(str(channel.id))
        if project is None:
            raise StudioError("Mood boards belong to a project: use this inside an Atelier project thread.")
        return project

    @app_commands.command(name="add", description="Add images (uploads, or a link to a message with images)")
    @app_commands.describe(
        image="An image to add", image2="Another image", link="A link to a message with images"
    )
    async def add(
        self,
        interaction: discord.Interaction[AtelierBot],
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        project = await self._project(interaction)
        limit = self.bot.studio.settings.max_upload_bytes
        uploads = [await read_upload(a, limit) for a in (image, image2) if a is not None]
        if link:
            uploads += await linked_images(self.bot, interaction, link, limit, "Add to mood board")
        if not uploads:
            raise StudioError("Attach an image, or give a link to a message with images.")
        count = await self.bot.studio.boards.add(requester_of(interaction), project, uploads)
        await reply(
            interaction,
            f"Added {len(uploads)} image(s); the board holds {count}. `/moodboard show` to see it.",
        )

    @app_commands.command(name="show", description="Post the board as one numbered image")
    async def show(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        project = await self._project(interaction)
        sheet = await self.bot.studio.boards.sheet(project)
        channel = interaction.channel
        assert isinstance(channel, discord.abc.Messageable)
        count = len(await self.bot.studio.store.board(project.id))
        content = f"🖼️ Mood board · {count} image(s)"
        await send_images(
            self.bot,
            [Picture(sheet, "moodboard")],
            lambda files: channel.send(content, files=files),
            interaction=interaction,
        )
        await reply(interaction, "Posted the board.")

    @app_commands.command(name="remove", description="Remove image number N from the board")
    async def remove(
        self, interaction: discord.Interaction[AtelierBot], number: app_commands.Range[int, 1, 16]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        project = await self._project(interaction)
        left = await self.bot.studio.boards.remove(requester_of(interaction), project, number)
        await reply(interaction, f"Removed image {number}; the board holds {left}.")

    @app_commands.command(name="clear", description="Empty the board")
    async def clear(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        project = await self._project(interaction)
        await self.bot.studio.boards.clear(requester_of(interaction), project)
        await reply(interaction, "The board is empty.")
