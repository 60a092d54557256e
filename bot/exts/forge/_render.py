"""Words and embeds only the forge shows: base models in /models info (runs: bot/ui/training.py)."""

from __future__ import annotations

import discord

from studio.catalogue import ModelEntry


def base_embed(entry: ModelEntry) -> discord.Embed:
    embed = discord.Embed(title=f"{entry.id} (base model)", description=entry.description, colour=0x6D5BD0)
    embed.add_field(name="Family", value=entry.family.upper())
    embed.add_field(name="Defaults", value=f"{entry.default_steps} steps · cfg {entry.default_guidance:g}")
    embed.add_field(name="Native size", value=f"{entry.native_size} px")
    if entry.tags:
        embed.add_field(name="Tags", value=", ".join(entry.tags))
    return embed
