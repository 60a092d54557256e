"""/ideate: a keyword brainstorm and suggested prompts in a new project thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.ideate._cog import IdeateCog
    from bot.exts.ideate._views import IdeaButton

    bot.add_dynamic_items(IdeaButton)
    await bot.add_cog(IdeateCog(bot))
