"""Finishing in Discord: /upscale, /inpaint, /grade (preview, Apply, Adjust) and /export."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.finish._cog import ExportCog, FinishCog
    from bot.exts.finish._views import GradeButton

    await bot.add_cog(FinishCog(bot))
    await bot.add_cog(ExportCog(bot))
    bot.add_dynamic_items(GradeButton)  # Apply / Adjust keep working after restarts
