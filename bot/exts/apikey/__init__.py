"""/apikey: REST API keys; and showing API generations in the Discord threads they were sent to."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.apikey._cog import ApiKeyCog

    await bot.add_cog(ApiKeyCog(bot))
