"""The Forge in Discord: /train (LoRA training in a project thread) and /models (the catalogue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.forge._cog import ForgeCog, ModelsCog
    from bot.ui.training import CancelTrainingButton

    await bot.add_cog(ForgeCog(bot))
    await bot.add_cog(ModelsCog(bot))
    bot.add_dynamic_items(CancelTrainingButton)  # the button keeps working after restarts
