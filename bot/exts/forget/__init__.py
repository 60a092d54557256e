"""/forget: a person erases their own images (one project, or everything), after confirming."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.forget._cog import ForgetCog

    await bot.add_cog(ForgetCog(bot))
