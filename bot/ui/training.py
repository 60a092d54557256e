"""A training run's status message: its words (queued, steps, loss, ETA, outcome), embed and
Cancel button. The shell posts and edits it (bot/training_delivery.py); the forge feature starts
runs, shows models with the same embed, and registers the button (persistent: its custom id
names the run and never changes format)."""

from __future__ import annotations

import json
import re
from typing import Any

import discord

from bot import render
from bot.interactions import guarded, reply
from bot.projects import requester_of
from studio.entities import Lora


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 5400:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def title(lora: Lora) -> str:
    return f"`{lora.name}` v{lora.version}"


def status(lora: Lora, total: int, rate: float | None, position: int | None = None) -> str:
    """The status message while a run is queued, running or waiting to be retried."""
    head = (
        f"🧪 Training {title(lora)} · trigger `{lora.trigger}` · {lora.image_count} images · "
        f"{lora.base_model}"
    )
    if lora.status == "queued":
        ahead = "next in line" if not position else f"{position} run{'s' if position != 1 else ''} ahead"
        return f"{head}\n⏳ Queued — {ahead}."
    if lora.status == "retrying":
        return (
            f"{head}\n⚠️ Retrying: {render.quote(lora.error or 'the training worker stopped', 300)} "
            f"(stopped at step {lora.step}/{total}, attempt {lora.attempts})."
        )
    attempt = f" (attempt {lora.attempts})" if lora.attempts > 1 else ""
    loss = f" · loss {lora.loss:.4f}" if lora.loss is not None else ""
    eta = f" · ETA {_duration((total - lora.step) / rate)}" if rate and lora.step else ""
    return f"{head}\n🔥 Step {lora.step}/{total}{attempt} `{render.bar(lora.step, total)}`{loss}{eta}"


def done(lora: Lora) -> str:
    losses = lora.losses
    trend = f" · loss {losses[0]:.4f} → {losses[-1]:.4f}" if len(losses) >= 2 else ""
    took = f" in {_duration(lora.seconds)}" if lora.seconds else ""
    steps = f" · {lora.step} steps"  # the last progress edit may have been throttled away
    return (
        f"✅ Trained {title(lora)}{took}{trend}{steps}.\n"
        "Top row: the base model; bottom row: with the LoRA, on the same seeds.\n"
        f"Use it: `/imagine prompt:{lora.trigger} … lora:{lora.name}` or `--lora {lora.name}:0.8`."
    )


def ended(lora: Lora) -> str:
    if lora.status == "cancelled":
        return f"❌ Training of {title(lora)} was cancelled."
    return f"⚠️ Training of {title(lora)} failed: {render.quote(lora.error or 'unknown error', 1500)}"


def lora_embed(lora: Lora) -> discord.Embed:
    params = json.loads(lora.params_json)
    embed = discord.Embed(title=f"{lora.name} (LoRA v{lora.version})", colour=0xD08A5B)
    embed.add_field(name="Base model", value=f"{lora.base_model} ({lora.family.upper()})")
    embed.add_field(name="Trigger", value=f"`{lora.trigger}`")
    embed.add_field(name="Owner", value=render.credit(lora.owner_id))
    embed.add_field(name="Visibility", value="private" if lora.visibility == "private" else "this server")
    if lora.imported:  # no run behind it: say how the file was read instead
        found = params["imported"]
        embed.add_field(
            name="Imported",
            value=f"{found['format']} file · rank {found['rank']} · {found['modules']} layers",
            inline=False,
        )
    else:
        embed.add_field(
            name="Training",
            value=(
                f"{params['steps']} steps · rank {params['rank']} · lr {params['learning_rate']:g} · "
                f"{params['resolution']} px · {lora.image_count} images"
                + (" · text encoder" if params.get("train_text_encoder") else "")
            ),
            inline=False,
        )
    if lora.size_bytes:
        embed.add_field(name="Weights", value=f"{lora.size_bytes / 1_048_576:.1f} MiB (safetensors)")
    return embed


class CancelTrainingButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"at:t:x:(?P<run>[0-9a-f]{32})"
):
    def __init__(self, lora_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel training",
                emoji="❌",
                style=discord.ButtonStyle.danger,
                custom_id=f"at:t:x:{lora_id}",
            )
        )
        self.lora_id = lora_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CancelTrainingButton:
        return cls(match["run"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            await interaction.response.defer(ephemeral=True, thinking=True)
            lora = await interaction.client.studio.forge.cancel(requester_of(interaction), self.lora_id)
            await reply(interaction, f"Stopping the training of `{lora.name}`…")


def training_view(lora_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelTrainingButton(lora_id))
    return view
