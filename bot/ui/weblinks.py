"""Links from Discord into the web studio, which ``atelier api`` serves at ``api_public_url``.

Without a public URL there is no address a member's browser could reach, so nothing links there.
The paths are the web studio's (web/pages); each page checks who may see it, so a link to a
private image opens for its owner and answers "not found" to anyone else, like a missing one.
Link buttons carry a URL and no custom id: Discord opens them without an interaction, so they need
no handler and survive restarts as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.render import NO_PINGS, quote

MAX_LINK_URL = 512  # Discord refuses a link button whose url is longer (and the whole message with it)
OPEN = "Open in studio"


def studio_base(public_url: str | None) -> str | None:
    """The web studio's base URL, or None where no link can point at it: unset, or not http(s)
    (Discord's link buttons take only web addresses)."""
    if not public_url or not public_url.startswith(("https://", "http://")):
        return None
    return public_url.rstrip("/")


def gallery_url(base: str, server_id: str) -> str:
    return f"{base}/s/{server_id}/gallery"


def library_url(base: str, server_id: str) -> str:
    return f"{base}/s/{server_id}/library"


def image_page(base: str | None, server_id: str | None, generation_id: str, index: int) -> str | None:
    """Image ``index`` (0-based, like the studio's) of a generation, on its own page; None without
    a studio or a server (a generation made outside one has no page there)."""
    if base is None or server_id is None:
        return None
    return f"{base}/s/{server_id}/images/{generation_id}/{index}"


def image_pages(base: str | None, server_id: str | None, generation_id: str, count: int) -> list[str]:
    """The pages of a generation's ``count`` images (none where there is no page)."""
    pages = [image_page(base, server_id, generation_id, i) for i in range(count)]
    return [page for page in pages if page is not None]


def link_button(label: str, url: str, row: int | None = None) -> discord.ui.Button[Any] | None:
    """A link button, or None for a URL Discord would refuse (over 512 characters): a link is a
    convenience, and must never cost the message it sits on."""
    if len(url) > MAX_LINK_URL:
        return None
    return discord.ui.Button(style=discord.ButtonStyle.link, label=label, url=url, row=row)


def add_links(view: discord.ui.View, links: Sequence[tuple[str, str]], first_row: int) -> None:
    """``(label, url)`` link buttons, five to a row from ``first_row``."""
    for position, (label, url) in enumerate(links):
        button = link_button(label, url, row=first_row + position // 5)
        if button is not None:
            view.add_item(button)


IN_A_DM = (
    "The web studio is per server: use `/web` in a server you share with me, and I'll link that "
    "server's gallery and your library there."
)
NOT_SET_UP = (
    "The web studio isn't set up for this bot yet. (Whoever runs Atelier: set `ATELIER_API_PUBLIC_URL` "
    "to the address where people's browsers reach `atelier api`.)"
)


def studio_answer(
    public_url: str | None, server_id: int | None, server_name: str
) -> tuple[str, list[tuple[str, str]]]:
    """What /web says, and its ``(label, url)`` links."""
    if server_id is None:
        return IN_A_DM, []
    base = studio_base(public_url)
    if base is None:
        return NOT_SET_UP, []
    server = str(server_id)
    text = (
        f"**Atelier's web studio** for {quote(server_name, 100)}: the community gallery, and your "
        "library (your projects and images, private ones shown only to you). Sign in with Discord."
    )
    return text, [("Gallery", gallery_url(base, server)), ("Your library", library_url(base, server))]


async def send_studio_links(interaction: discord.Interaction[Any], public_url: str | None) -> None:
    """/web and /atelier web: the answer, only to the person who asked, with its link buttons."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    name = interaction.guild.name if interaction.guild is not None else ""
    text, links = studio_answer(public_url, interaction.guild_id, name)
    view = discord.ui.View(timeout=None)
    add_links(view, links, first_row=0)
    await interaction.followup.send(text, view=view, ephemeral=True, allowed_mentions=NO_PINGS)
