"""Autocomplete choices for models, shared by the commands that take one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.projects import requester_of
from studio.catalogue import ModelEntry

if TYPE_CHECKING:
    from bot.app import AtelierBot

MAX_CHOICES = 25  # Discord's limit


def base_model_choices(models: Iterable[ModelEntry], current: str) -> list[app_commands.Choice[str]]:
    """Base models whose id or description contains what was typed."""
    needle = current.lower().strip()
    return [
        app_commands.Choice(name=f"{entry.id} — {entry.description}"[:100], value=entry.id)
        for entry in models
        if needle in f"{entry.id} {entry.description}".lower()
    ][:MAX_CHOICES]


async def lora_choices(
    bot: AtelierBot, interaction: discord.Interaction[Any], current: str, base: bool = False
) -> list[app_commands.Choice[str]]:
    """LoRAs the person may use whose name or trigger contains what was typed (and base models)."""
    found = await bot.studio.models.available(requester_of(interaction))
    needle = current.lower().strip()
    choices = [
        app_commands.Choice(
            name=f"{lora.name} — LoRA on {lora.base_model} (trigger {lora.trigger})"[:100], value=lora.name
        )
        for lora in found.loras
        if needle in f"{lora.name} {lora.trigger}".lower()
    ]
    if base:
        choices += base_model_choices(found.base, current)
    return choices[:MAX_CHOICES]
