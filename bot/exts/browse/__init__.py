"""/browse: the community feed of top public creations."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.browse._cog import BrowseCog, PageButton

    bot.add_dynamic_items(PageButton)
    await bot.add_cog(BrowseCog(bot))
