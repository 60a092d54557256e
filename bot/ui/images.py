"""Posting images: each file fitted to the upload limit, refitted smaller when Discord says 413.

Every place that posts an image goes through ``send_images``, so none can fail on size: the
full-size image stays in the studio, Discord gets a copy that fits (re-encoded as JPEG and, if
need be, downscaled). The limit is the interaction's when there is one (boosts included), else
the one remembered for the server; a 413 means it is lower than we knew, so it is remembered
lower and the files are fitted again, for as long as that makes them smaller.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import discord

from bot.render import fit_image

if TYPE_CHECKING:
    from bot.app import AtelierBot

T = TypeVar("T")


class Picture:
    """An image to post: its full-size bytes and name (no extension), and its fitted copies.

    Fitting is pixel work, done in a thread and once per limit: a picture posted to several
    channels is fitted once.
    """

    def __init__(self, png: bytes, name: str) -> None:
        self.png = png
        self.name = name
        self._fitted: dict[int, tuple[bytes, str]] = {}

    async def file(self, limit: int) -> FittedFile:
        if limit not in self._fitted:
            self._fitted[limit] = await asyncio.to_thread(fit_image, self.png, limit, self.name)
        data, filename = self._fitted[limit]
        return FittedFile(data, filename, refitted=data is not self.png)


class FittedFile(discord.File):
    """A file as sent; ``refitted`` when it is a smaller copy of the image, not the image itself."""

    def __init__(self, data: bytes, filename: str, refitted: bool) -> None:
        super().__init__(io.BytesIO(data), filename)
        self.size = len(data)
        self.refitted = refitted


def age_restricted(channel: object) -> bool:
    """Whether Discord marks the channel age-restricted (``nsfw``); a thread takes its parent's
    flag. Unknown (a parent not cached): not restricted, so flagged images stay withheld."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def withheld_sentence(indices: list[int], outcome: str = "blurred here") -> str:
    """Why flagged images (0-based ``indices``) are blurred or not posted, for their owner."""
    numbers = ", ".join(str(i + 1) for i in indices)
    which = f"Image {numbers} was" if len(indices) == 1 else f"Images {numbers} were"
    they = "it is" if len(indices) == 1 else "they are"
    return (
        f"{which} flagged by this server's image safety check, so {they} {outcome}; flagged images "
        "are shown only in age-restricted channels."
    )


def guild_of(channel: object) -> discord.Guild | None:
    guild = getattr(channel, "guild", None)
    return guild if isinstance(guild, discord.Guild) else None


async def send_images(
    bot: AtelierBot,
    pictures: Sequence[Picture],
    send: Callable[[list[FittedFile]], Awaitable[T]],
    *,
    guild: discord.Guild | None = None,
    interaction: discord.Interaction[Any] | None = None,
) -> T:
    """``send(files)``, the pictures fitted to the upload limit; on a 413, fitted smaller, again.

    ``send`` posts, edits or follows up with the files it is given (fresh ones each try: Discord
    consumes them). Pass the ``interaction`` when there is one (its limit is the effective one),
    else the ``guild`` the files go to (None: a DM, Discord's default limit).
    """
    if interaction is not None:
        bot.remember_limit(interaction)
        guild = interaction.guild
        limit = interaction.filesize_limit
    else:
        limit = bot.upload_limit(guild)
    while True:
        files = [await picture.file(limit) for picture in pictures]
        try:
            return await send(files)
        except discord.HTTPException as error:
            if error.status != 413 or not files:
                raise
            largest = max(file.size for file in files)
            lower = bot.limit_after_413(guild, largest, error)  # lower than we knew: remembered
            if lower >= largest:
                raise  # nothing smaller to try
            limit = lower
