"""/settings: personal defaults, and the server's for admins."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.settings._cog import SettingsCog

    await bot.add_cog(SettingsCog(bot))
