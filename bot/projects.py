"""Project threads and generation status messages, shared by the features that start work."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from bot import render
from bot.ui.generation import status_view
from studio import jobs
from studio.entities import Generation, Project, Requester
from studio.errors import StudioError

if TYPE_CHECKING:
    from bot.app import AtelierBot


def requester_of(interaction: discord.Interaction[Any]) -> Requester:
    user = interaction.user
    in_guild = interaction.guild is not None
    roles = (
        frozenset(str(role.id) for role in user.roles) if isinstance(user, discord.Member) else frozenset()
    )
    return Requester(
        id=f"discord:{user.id}",
        name=user.display_name,
        moderator=in_guild and bool(interaction.permissions.manage_messages),
        admin=in_guild and bool(interaction.permissions.manage_guild),
        server=str(interaction.guild_id) if in_guild else None,
        roles=roles,
    )


async def project_target(
    bot: AtelierBot,
    interaction: discord.Interaction[Any],
    requester: Requester,
    title: str,
    private: bool = False,
    command: str = "/imagine",
) -> tuple[discord.Thread, Project]:
    """The project thread to work in: this one if it is a project, else a new one from this channel."""
    return await project_in(bot, interaction.channel, interaction.user, requester, title, private, command)


async def project_in(
    bot: AtelierBot,
    channel: Any,
    user: discord.abc.User,
    requester: Requester,
    title: str,
    private: bool = False,
    command: str = "/imagine",
) -> tuple[discord.Thread, Project]:
    """``channel`` if it is a project thread, else a new project thread of it for ``user``."""
    if isinstance(channel, discord.Thread):
        project = await bot.studio.store.project_by_thread(str(channel.id))
        if project is None:
            raise StudioError(f"This thread is not an Atelier project: use {command} in a text channel.")
        return channel, project
    if not isinstance(channel, discord.TextChannel):
        raise StudioError(f"Use {command} in a server text channel or in an Atelier project thread.")
    return await new_project_thread(bot, channel, user, requester, title, private)


async def new_project_thread(
    bot: AtelierBot,
    channel: discord.TextChannel,
    user: discord.abc.User,
    requester: Requester,
    title: str,
    private: bool = False,
) -> tuple[discord.Thread, Project]:
    """A new project for ``requester`` in a new thread of ``channel``."""
    starter = bot.studio.settings.project_thread_starter_message
    thread = await _open_thread(channel, user, title, private, starter)
    return thread, await bot.studio.projects.open(requester, thread.name, str(thread.id))


async def _open_thread(
    channel: discord.TextChannel, user: discord.abc.User, title: str, private: bool, starter_message: bool
) -> discord.Thread:
    name = render.thread_name(title)
    if private:
        thread = await channel.create_thread(
            name=name, type=discord.ChannelType.private_thread, auto_archive_duration=1440, invitable=False
        )
        # Only members (and moderators) see a private thread, and a mention with pings suppressed
        # adds no one: the owner must be added explicitly or their own project is invisible to them.
        await thread.add_user(user)
        await thread.send(f"🔒 Private project of {user.mention}.", allowed_mentions=render.NO_PINGS)
        return thread
    intro = f"🎨 {user.mention} started a project: *{render.quote(title)}*"
    if starter_message:  # the old way: a burst queues behind the channel's 5 messages per 5 s
        starter = await channel.send(intro, allowed_mentions=render.NO_PINGS)
        # Not followup.send(wait=True): that message lacks guild info and cannot start a thread.
        return await channel.create_thread(name=name, message=starter, auto_archive_duration=1440)
    # No starter message: nothing is sent to the channel, whose message bucket a burst of
    # /imagine would otherwise share (Discord itself shows "started a thread" there). The
    # introduction goes inside the thread, a channel with a bucket of its own.
    thread = await channel.create_thread(
        name=name, type=discord.ChannelType.public_thread, auto_archive_duration=1440
    )
    await thread.send(intro, allowed_mentions=render.NO_PINGS)
    return thread


async def post_status(
    bot: AtelierBot, channel: discord.abc.Messageable, generation: Generation
) -> discord.Message:
    """The status message of a new generation, tracked until it becomes the result."""
    status = await channel.send(
        render.queued(generation, await bot.studio.queue.position(jobs.INFERENCE, generation.id)),
        view=status_view(generation.id),
        allowed_mentions=render.NO_PINGS,
    )
    await bot.studio.generations.record_status_post(generation.id, str(status.channel.id), str(status.id))
    bot.delivery.track(generation.id, str(status.channel.id), str(status.id))
    return status
