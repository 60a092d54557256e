"""A numbered contact sheet of a batch: tiles left to right, top to bottom, labelled 1..n."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFilter, ImageFont

MAX_TILES = 8
MAX_TILE_PIXELS = 2048 * 2048


def columns_for(count: int) -> int:
    return {1: 1, 2: 2, 3: 3, 4: 2, 5: 3, 6: 3}.get(count, 4 if count <= 8 else 4 if count <= 12 else 6)


def compose_grid(
    pngs: list[bytes], labels: bool = True, max_tiles: int = MAX_TILES, blur: frozenset[int] = frozenset()
) -> bytes:
    """``blur``: tiles (0-based) shown blurred beyond recognition (flagged by the safety check)."""
    if not 1 <= len(pngs) <= max_tiles:
        raise ValueError(f"a grid holds 1 to {max_tiles} images, got {len(pngs)}")
    tiles: list[Image.Image] = []
    for data in pngs:
        source = Image.open(io.BytesIO(data))
        if source.width * source.height > MAX_TILE_PIXELS:
            raise ValueError(f"tile of {source.width}x{source.height} is too large for a grid")
        tile = source.convert("RGB")
        if len(tiles) in blur:
            tile = blurred(tile)
        tiles.append(tile)
    width = max(t.width for t in tiles)
    height = max(t.height for t in tiles)
    cols = columns_for(len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    gap = max(2, width // 64)
    sheet = Image.new(
        "RGB", (cols * width + (cols - 1) * gap, rows * height + (rows - 1) * gap), (24, 24, 27)
    )
    draw = ImageDraw.Draw(sheet)
    font_size = max(10, min(width, height) // 10)
    font = ImageFont.load_default(size=font_size)
    for n, tile in enumerate(tiles):
        x = (n % cols) * (width + gap)
        y = (n // cols) * (height + gap)
        sheet.paste(tile, (x, y))
        if labels:
            pad = max(2, font_size // 4)
            box = draw.textbbox((x + pad * 2, y + pad), str(n + 1), font=font)
            draw.rounded_rectangle(
                (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), radius=pad, fill=(0, 0, 0)
            )
            draw.text((x + pad * 2, y + pad), str(n + 1), font=font, fill=(255, 255, 255))
    out = io.BytesIO()
    sheet.save(out, format="PNG", compress_level=4)
    return out.getvalue()


def blurred(tile: Image.Image) -> Image.Image:
    """A tile reduced to a few colour blobs: shrunk to 8 px, blurred, scaled back and darkened."""
    small = tile.resize((8, max(1, 8 * tile.height // max(1, tile.width))), Image.Resampling.BILINEAR)
    soft = small.resize(tile.size, Image.Resampling.BILINEAR)
    soft = soft.filter(ImageFilter.GaussianBlur(max(1, tile.width // 16)))
    return Image.blend(soft, Image.new("RGB", tile.size, (24, 24, 27)), 0.35)
