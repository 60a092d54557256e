"""Answering interactions: ephemeral errors in plain words, an apology for the unexpected."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import discord

from bot.render import NO_PINGS
from studio.errors import StudioError

log = logging.getLogger(__name__)
APOLOGY = "Sorry — something went wrong on my side. It has been logged; please try again in a moment."


async def reply(interaction: discord.Interaction[Any], text: str, ephemeral: bool = True) -> None:
    """Answer whether or not the interaction was already acknowledged."""
    if interaction.response.is_done():
        await interaction.followup.send(text[:2000], ephemeral=ephemeral, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(text[:2000], ephemeral=ephemeral, allowed_mentions=NO_PINGS)


async def report(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """StudioErrors are the user's to fix: say so. Anything else is ours: log it, apologise."""
    if isinstance(error, StudioError):
        text = str(error)
    else:
        command = interaction.command.qualified_name if interaction.command else interaction.data
        log.error("unexpected error in %s for user %s", command, interaction.user.id, exc_info=error)
        text = APOLOGY
    try:
        await reply(interaction, text)
    except discord.HTTPException:
        log.warning("could not tell user %s about an error", interaction.user.id, exc_info=True)


@contextlib.asynccontextmanager
async def guarded(interaction: discord.Interaction[Any]) -> AsyncIterator[None]:
    """Run a component callback; whatever it raises ends as an ephemeral answer, never silence."""
    try:
        yield
    except Exception as error:  # every failure must reach the user as words
        await report(interaction, error)
