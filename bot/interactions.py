"""Answering interactions: ephemeral errors in plain words, an apology for the unexpected."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import discord

from bot.render import NO_PINGS
from studio.errors import StudioError
from studio.quotas import DailyQuotaReached

log = logging.getLogger(__name__)
APOLOGY = "Sorry — something went wrong on my side. It has been logged; please try again in a moment."
# Discord's answers once an interaction can no longer be answered: unknown interaction (the 3 s
# window passed), unknown webhook, invalid webhook token (its 15 minutes are over).
DEAD_TOKEN_CODES = frozenset({10062, 10015, 50027})


def token_is_dead(error: BaseException) -> bool:
    """Whether ``error`` says this interaction cannot be answered any more (nothing we can fix)."""
    return isinstance(error, discord.HTTPException) and error.code in DEAD_TOKEN_CODES


async def reply(interaction: discord.Interaction[Any], text: str, ephemeral: bool = True) -> None:
    """Answer whether or not the interaction was already acknowledged."""
    if interaction.response.is_done():
        await interaction.followup.send(text[:2000], ephemeral=ephemeral, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(text[:2000], ephemeral=ephemeral, allowed_mentions=NO_PINGS)


def _command(interaction: discord.Interaction[Any]) -> object:
    return interaction.command.qualified_name if interaction.command else interaction.data


async def report(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """StudioErrors are the user's to fix: say so. Anything else is ours: log it, apologise.

    An interaction Discord no longer accepts answers for is nobody's fault and cannot be told
    anything: a warning, no traceback, no apology (work already started still delivers).
    """
    if token_is_dead(error):
        assert isinstance(error, discord.HTTPException)
        log.warning(
            "could not answer %s for user %s: the interaction expired (%s %s)",
            _command(interaction),
            interaction.user.id,
            error.status,
            error.text or error.code,
        )
        return
    if isinstance(error, StudioError):
        text = error.discord_text if isinstance(error, DailyQuotaReached) else str(error)
    else:
        log.error(
            "unexpected error in %s for user %s", _command(interaction), interaction.user.id, exc_info=error
        )
        text = APOLOGY
    try:
        await reply(interaction, text)
    except discord.HTTPException as failed:
        if token_is_dead(failed):
            log.warning("could not tell user %s about an error: the interaction expired", interaction.user.id)
        else:
            log.warning("could not tell user %s about an error", interaction.user.id, exc_info=True)


@contextlib.asynccontextmanager
async def guarded(interaction: discord.Interaction[Any]) -> AsyncIterator[None]:
    """Run a component callback; whatever it raises ends as an ephemeral answer, never silence."""
    try:
        yield
    except Exception as error:  # every failure must reach the user as words
        await report(interaction, error)
