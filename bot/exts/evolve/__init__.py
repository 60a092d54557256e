"""/evolve: rounds of a grid voted on in a Discord poll; each winner is varied into the next round."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.evolve._cog import EvolveCog
    from bot.exts.evolve._views import EndVoteButton

    bot.add_dynamic_items(EndVoteButton)
    await bot.add_cog(EvolveCog(bot))
