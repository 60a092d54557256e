"""/web: links to the server's gallery and the person's library in the web studio."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.web._cog import WebCog

    await bot.add_cog(WebCog(bot))
