"""Message links users paste: parsed, kept to this server, and their image attachments fetched."""

from __future__ import annotations

import re
from typing import Any

import discord

from studio.errors import StudioError

MESSAGE_LINK = re.compile(
    r"(?:https?://)?(?:\w+\.)?discord(?:app)?\.com/channels/(?P<guild>\d+|@me)/(?P<channel>\d+)/(?P<message>\d+)"
)
MAX_IMAGES_PER_MESSAGE = 4


def parse_link(interaction: discord.Interaction[Any], link: str) -> tuple[int, int]:
    """(channel id, message id) of a link to a message on this server."""
    found = MESSAGE_LINK.search(link)
    if found is None:
        raise StudioError("That is not a message link: use “Copy Message Link” on the message.")
    if found["guild"] != str(interaction.guild_id):
        raise StudioError("That link points to another server; I can only use messages from this one.")
    return int(found["channel"]), int(found["message"])


def menu_hint(menu: str) -> str:
    return (
        f"I can't see the images in other people's messages from a link: Discord shows them to "
        f"apps only when they are picked directly. Open that message's menu (right-click or "
        f"long-press → Apps) and choose “{menu}”, or attach the images here."
    )


async def linked_attachments(
    client: discord.Client, interaction: discord.Interaction[Any], link: str, most: int, menu: str
) -> list[discord.Attachment]:
    """The image attachments (at most ``most``) of a linked message on this server.

    Without the privileged Message Content intent (Atelier asks for none), Discord sends other
    people's messages with no attachments, over REST too: a link works for the bot's own
    messages (and ones that mention it); for the rest the person is pointed at the message
    menu ``menu``, whose target message arrives in full."""
    message = await linked_message(client, interaction, link)
    images = [a for a in message.attachments if looks_like_image(a)]
    if not images and attachments_withheld(client, message):
        raise StudioError(menu_hint(menu))
    if not images:
        raise StudioError("That message has no images.")
    return images[:most]


async def linked_message(
    client: discord.Client, interaction: discord.Interaction[Any], link: str
) -> discord.Message:
    """The linked message on this server, fetched as the bot (Discord checks it may read that channel)."""
    channel_id, message_id = parse_link(interaction, link)
    try:
        channel = client.get_channel(channel_id) or await client.fetch_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise StudioError("That link does not point to a message I can read.")
        return await channel.fetch_message(message_id)
    except (discord.NotFound, discord.Forbidden):
        raise StudioError("I can't find that message (deleted, or in a channel I can't read).") from None


def attachments_withheld(client: discord.Client, message: discord.Message) -> bool:
    """Discord sent the message without its attachments (no Message Content intent, not ours)."""
    withheld = not client.intents.message_content and (client.user is None or message.author != client.user)
    return withheld and not message.attachments


async def linked_images(
    client: discord.Client, interaction: discord.Interaction[Any], link: str, limit: int, menu: str
) -> list[bytes]:
    """The image attachments of a linked message (each size-checked before it is downloaded)."""
    found = await linked_attachments(client, interaction, link, MAX_IMAGES_PER_MESSAGE, menu)
    return [await read_upload(attachment, limit) for attachment in found]


def looks_like_image(attachment: discord.Attachment) -> bool:
    # What it really is gets checked later (header, then a full decode); this only picks candidates.
    return (attachment.content_type or "").startswith("image/") or attachment.filename.lower().endswith(
        (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
    )


async def read_upload(attachment: discord.Attachment, limit: int) -> bytes:
    if attachment.size > limit:  # refused before a byte is downloaded
        size, most = attachment.size / 1_048_576, limit / 1_048_576
        raise StudioError(f"{attachment.filename} is {size:.1f} MiB; the limit is {most:.0f} MiB.")
    return await attachment.read()
