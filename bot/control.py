"""/imagine's structure control: the `control:` attachment and its mode, strength and start/end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from bot.links import read_upload
from bot.pending import Command
from bot.ui.images import Picture
from studio.control import ControlAsk
from studio.entities import Generation
from studio.errors import InvalidRecipe

if TYPE_CHECKING:
    from bot.app import AtelierBot
    from studio.app import Studio

CONTROL_OPTIONS = ("control_mode", "control_strength", "control_start", "control_end")


def control_said(
    control: discord.Attachment | None,
    mode: str | None,
    strength: float | None,
    start: float | None,
    end: float | None,
) -> dict[str, Any]:
    """The options to record with the command (the attachment as its dict: read again on a resume)."""
    return {
        "control": control.to_dict() if control else None,
        "control_mode": mode,
        "control_strength": strength,
        "control_start": start,
        "control_end": end,
    }


async def control_ask(bot: AtelierBot, command: Command) -> ControlAsk | None:
    """The control the command asks for, or None; a control option without an image is one sentence."""
    said = command.options
    if said.get("control") is None:
        if any(said.get(option) is not None for option in CONTROL_OPTIONS):
            raise InvalidRecipe(
                "control",
                "Control options need an image: attach one with `control:` (canny edges by default).",
            )
        return None
    attachment = discord.Attachment(data=said["control"], state=bot._connection)
    data = await read_upload(attachment, bot.studio.settings.max_upload_bytes)
    return ControlAsk(
        image=data,
        mode=str(said.get("control_mode") or "canny"),
        strength=said.get("control_strength"),
        start=said.get("control_start"),
        end=said.get("control_end"),
    )


async def control_pictures(studio: Studio, generation: Generation) -> list[Picture]:
    """The control map a result was made with, to post beside it (none without control)."""
    control = generation.recipe.control
    if control is None or control.map is None:
        return []
    try:
        png = await studio.artifacts.read(control.map)
    except FileNotFoundError:  # removed since: the result goes without it
        return []
    return [Picture(png, f"atelier-{generation.id[:8]}-{control.mode}-map")]
