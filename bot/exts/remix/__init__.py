"""Community remix: remix channels, cross-posted public results, Remix button/modal and 🔀."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.remix._cog import AtelierCog
    from bot.ui.remix import RemixButton

    bot.add_dynamic_items(RemixButton)
    await bot.add_cog(AtelierCog(bot))
