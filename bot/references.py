"""/imagine's reference images: the `sref:`/`cref:` attachments and a reader for message links."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from bot.links import (
    MAX_IMAGES_PER_MESSAGE,
    MESSAGE_LINK,
    attachments_withheld,
    looks_like_image,
    read_upload,
)
from bot.pending import Command
from studio.errors import StudioError
from studio.references import LinkReader, ReferenceAsk

if TYPE_CHECKING:
    from bot.app import AtelierBot


def link_reader(bot: AtelierBot, limit: int) -> LinkReader:
    """Reads a linked message's image attachments (a link to no Atelier result), as the bot.

    The studio has already kept the link to this server. Without the Message Content intent,
    Discord sends other people's messages without attachments: those are refused in words."""

    async def read(link: str) -> list[bytes]:
        found = MESSAGE_LINK.search(link)
        if found is None:
            raise StudioError("That is not a message link: use “Copy Message Link” on the message.")
        try:
            channel = bot.get_channel(int(found["channel"])) or await bot.fetch_channel(int(found["channel"]))
            if not isinstance(channel, discord.abc.Messageable):
                raise StudioError("That link does not point to a message I can read.")
            message = await channel.fetch_message(int(found["message"]))
        except (discord.NotFound, discord.Forbidden):
            raise StudioError("I can't find that message (deleted, or in a channel I can't read).") from None
        images = [a for a in message.attachments if looks_like_image(a)]
        if not images and attachments_withheld(bot, message):
            raise StudioError(
                "I can't see the images in other people's messages from a link; attach the image "
                "with the `sref:` or `cref:` option instead."
            )
        if not images:
            raise StudioError("That message has no image to use as a reference.")
        return [await read_upload(a, limit) for a in images[:MAX_IMAGES_PER_MESSAGE]]

    return read


async def reference_ask(bot: AtelierBot, command: Command, channel: Any) -> ReferenceAsk:
    """The references /imagine's options bring: attachments (read again from their signed URLs on a
    resume), the board as a style reference unless `board_start:`, and the link reader."""
    said = command.options
    limit = bot.studio.settings.max_upload_bytes
    attached: dict[str, tuple[bytes, ...]] = {}
    for option in ("sref", "cref"):
        data = said.get(option)
        if isinstance(data, dict):
            attachment = discord.Attachment(data=data, state=bot._connection)  # type: ignore[arg-type]
            attached[option] = (await read_upload(attachment, limit),)
    return ReferenceAsk(
        style=attached.get("sref", ()),
        character=attached.get("cref", ()),
        board=bool(said.get("board")) and not said.get("board_start"),
        channel_id=str(channel.id) if isinstance(channel, discord.Thread) else None,
        read_link=link_reader(bot, limit),
    )
