"""Deleting the messages that showed erased work (a moderator's removal, /forget).

A bot may always delete its own messages; every message Atelier records is its own.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from studio.entities import Post
from studio.removal import Erased

if TYPE_CHECKING:
    from bot.app import AtelierBot

log = logging.getLogger(__name__)


async def delete_posts(bot: AtelierBot, posts: list[Post]) -> int:
    """Delete each message; one already gone counts as deleted. Returns how many went."""
    deleted = 0
    for post in {p.message_id: p for p in posts}.values():
        message = bot.get_partial_messageable(int(post.channel_id)).get_partial_message(int(post.message_id))
        try:
            await message.delete()
        except discord.NotFound:
            pass  # deleted already (by a moderator, or with its thread)
        except discord.HTTPException:
            log.warning("could not delete message %s in %s", post.message_id, post.channel_id, exc_info=True)
            continue
        deleted += 1
    return deleted


def summary(erased: Erased) -> str:
    """One sentence on what went."""
    images = f"{erased.images} image{'s' if erased.images != 1 else ''}"
    jobs = f"{erased.generations} result{'s' if erased.generations != 1 else ''}"
    text = f"Removed {images} ({jobs}) and {erased.files} stored file{'s' if erased.files != 1 else ''}."
    if erased.still_running:
        text += f" {erased.still_running} job(s) still running were left: run this again once they end."
    return text


async def manages_messages(bot: AtelierBot, interaction: discord.Interaction[Any], channel_id: int) -> bool:
    """Whether the person may manage messages in that channel (a moderator there), as Discord
    computes it from their roles and the channel's overwrites."""
    member = interaction.user
    if interaction.guild is None or not isinstance(member, discord.Member):
        return False
    channel = bot.get_channel(channel_id) or interaction.guild.get_thread(channel_id)
    if channel is None:
        try:
            channel = await bot.fetch_channel(channel_id)
        except discord.HTTPException:
            return False
    if (
        not isinstance(channel, discord.abc.GuildChannel | discord.Thread)
        or channel.guild != interaction.guild
    ):
        return False
    return channel.permissions_for(member).manage_messages
