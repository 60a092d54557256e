"""bot.ui.images.send_images: fitted to the limit at the first try, refitted smaller on a 413."""

from __future__ import annotations

import io
import os
from typing import Any

import discord
import pytest
from PIL import Image

from bot.render import limit_after_413
from bot.ui.images import FittedFile, Picture, send_images


def noisy_png(size: int) -> bytes:
    image = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class Response:
    def __init__(self, status: int) -> None:
        self.status, self.reason = status, "refused"


class Bot:
    """The upload-limit memory send_images relies on (AtelierBot's, without Discord)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.remembered: list[int] = []

    def upload_limit(self, guild: object) -> int:
        return self.limit

    def remember_limit(self, interaction: object) -> None:
        self.remembered.append(interaction.filesize_limit)  # type: ignore[attr-defined]

    def limit_after_413(self, guild: object, sent: int, error: discord.HTTPException) -> int:
        self.limit = limit_after_413(sent, error.text)
        return self.limit


class Channel:
    """Refuses files above ``real_limit`` bytes with 413 (or every send with ``status``)."""

    def __init__(self, real_limit: int, status: int = 413) -> None:
        self.real_limit, self.status = real_limit, status
        self.tries: list[list[tuple[str, int, bool]]] = []

    async def send(self, files: list[FittedFile]) -> str:
        self.tries.append([(f.filename, f.size, f.refitted) for f in files])
        if any(f.size > self.real_limit for f in files):
            raise discord.HTTPException(Response(self.status), f"file too big > limit {self.real_limit}")  # type: ignore[arg-type]
        return "sent"


async def test_images_that_fit_go_as_they_are() -> None:
    png = noisy_png(16)
    channel = Channel(real_limit=len(png))
    assert await send_images(Bot(len(png)), [Picture(png, "x")], channel.send) == "sent"  # type: ignore[arg-type]
    assert channel.tries == [[("x.png", len(png), False)]]


async def test_a_413_refits_to_the_limit_discord_states_and_tries_again() -> None:
    png = noisy_png(256)  # ~200 kB of noise
    bot = Bot(limit=10 * 1024 * 1024)  # what we believed
    channel = Channel(real_limit=30_000)  # what Discord enforces
    assert await send_images(bot, [Picture(png, "grid")], channel.send) == "sent"  # type: ignore[arg-type]
    (first,), (second,) = channel.tries
    assert first == ("grid.png", len(png), False)
    assert second[0] == "grid.jpg" and second[1] <= 30_000 and second[2]
    assert bot.limit == 30_000  # remembered: the next post fits at the first try


async def test_the_interactions_limit_is_used_and_remembered() -> None:
    png = noisy_png(256)
    interaction: Any = type("Interaction", (), {"filesize_limit": 20_000, "guild": None})()
    bot, channel = Bot(limit=10 * 1024 * 1024), Channel(real_limit=20_000)
    await send_images(bot, [Picture(png, "u")], channel.send, interaction=interaction)  # type: ignore[arg-type]
    assert len(channel.tries) == 1 and channel.tries[0][0][1] <= 20_000 and bot.remembered == [20_000]


async def test_other_refusals_are_not_retried() -> None:
    png = noisy_png(64)
    channel = Channel(real_limit=10, status=400)
    with pytest.raises(discord.HTTPException):
        await send_images(Bot(len(png)), [Picture(png, "x")], channel.send)  # type: ignore[arg-type]
    assert len(channel.tries) == 1
