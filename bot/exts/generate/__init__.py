"""/imagine and /remix, the result buttons; favourites, lineage and /status (the gallery)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.generate._cog import GenerateCog
    from bot.exts.generate._gallery import GalleryCog
    from bot.permutations import ConfirmButton
    from bot.ui.generation import ActionButton, FavouriteSelect
    from bot.ui.outpaint import EditButton

    bot.add_dynamic_items(ActionButton, FavouriteSelect)  # buttons keep working after restarts
    bot.add_dynamic_items(EditButton)  # a single image's Vary, Zoom Out and pan
    bot.add_dynamic_items(ConfirmButton)  # Confirm / Cancel of a large `{a, b}` permutation set
    await bot.add_cog(GenerateCog(bot))
    await bot.add_cog(GalleryCog(bot))
