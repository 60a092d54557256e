"""/describe: an image (an attachment or a message link) in, four suggested prompts out."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AtelierBot


async def setup(bot: AtelierBot) -> None:
    from bot.exts.describe._cog import DescribeButton, DescribeCog

    bot.add_dynamic_items(DescribeButton)
    await bot.add_cog(DescribeCog(bot))
