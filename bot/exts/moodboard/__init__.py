"""/moodboard: reference images collected in a project, and /imagine board: to start from them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.moodboard._cog import MoodboardCog

    await bot.add_cog(MoodboardCog(bot))
