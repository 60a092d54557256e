"""``--tile`` results: each image laid out 2x2, posted beside the grid, so the seams (there are
none) show at a glance. Composed here with pillow: a paste of four copies, cheap."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from bot.ui.images import Picture
from studio.app import Studio
from studio.entities import Generation

MAX_SHEET_SIDE = 2048  # a sheet larger than this is scaled down (four 1024 px copies fit)


def tiled_2x2(png: bytes) -> bytes:
    """The image twice across and twice down, as PNG."""
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    sheet = Image.new("RGB", (2 * width, 2 * height))
    for x in (0, width):
        for y in (0, height):
            sheet.paste(image, (x, y))
    scale = min(1.0, MAX_SHEET_SIDE / max(sheet.size))
    if scale < 1.0:
        sheet = sheet.resize(
            (round(sheet.width * scale), round(sheet.height * scale)), Image.Resampling.LANCZOS
        )
    out = io.BytesIO()
    sheet.save(out, "PNG")
    return out.getvalue()


async def tile_pictures(studio: Studio, generation: Generation, *, hide_flagged: bool) -> list[Picture]:
    """The 2x2 previews of a tiling result's images (none without ``--tile``); ``hide_flagged``:
    images the content policy flagged get none (they are not shown in this channel)."""
    if not generation.recipe.tile:
        return []
    flagged = set(await studio.store.policy.flagged_indices(generation.id)) if hide_flagged else set()
    pictures = []
    for image in await studio.store.images_of(generation.id):
        if image.index in flagged:
            continue
        try:
            png = await studio.artifacts.read(image.artifact)
        except FileNotFoundError:  # removed since
            continue
        sheet = await asyncio.to_thread(tiled_2x2, png)
        pictures.append(Picture(sheet, f"atelier-{generation.id[:8]}-{image.index + 1}-tiled"))
    return pictures
