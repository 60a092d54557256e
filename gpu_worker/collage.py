"""Mood-board pixels: a numbered contact sheet of a board, and the collage used as an img2img start.

Board images are uploads that the caller already verified (size, format, pixel count); here
they are only decoded, shrunk and laid out.
"""

from __future__ import annotations

import io
import math
import warnings

from PIL import Image, ImageOps

from gpu_worker.grid import compose_grid

MAX_BOARD = 16
THUMB = 256
MAX_PIXELS = 4096 * 4096


def _open(data: bytes, bound: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        source = Image.open(io.BytesIO(data))
        if source.width * source.height > MAX_PIXELS:
            raise ValueError(f"board image of {source.width}x{source.height} is too large")
        source.draft("RGB", (bound, bound))  # JPEG: decode at a fraction of the size
        image = ImageOps.exif_transpose(source).convert("RGB")
    image.thumbnail((bound, bound), Image.Resampling.LANCZOS)
    return image


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=4)
    return out.getvalue()


def board_sheet(images: list[bytes]) -> bytes:
    """The board as a numbered sheet of thumbnails (the number is what /moodboard remove takes)."""
    if not 1 <= len(images) <= MAX_BOARD:
        raise ValueError(f"a board holds 1 to {MAX_BOARD} images, got {len(images)}")
    thumbs = [_png(ImageOps.pad(_open(data, THUMB), (THUMB, THUMB), color=(24, 24, 27))) for data in images]
    return compose_grid(thumbs, labels=True, max_tiles=MAX_BOARD)


def collage(images: list[bytes], width: int, height: int) -> bytes:
    """The board's images tiled over a width x height canvas: the starting point of `board:` runs."""
    if not 1 <= len(images) <= MAX_BOARD:
        raise ValueError(f"a board holds 1 to {MAX_BOARD} images, got {len(images)}")
    cols = math.ceil(math.sqrt(len(images) * width / height))
    rows = math.ceil(len(images) / cols)
    canvas = Image.new("RGB", (width, height))
    for n, data in enumerate(images):
        col, row = n % cols, n // cols
        left, top = col * width // cols, row * height // rows
        right, bottom = (col + 1) * width // cols, (row + 1) * height // rows
        if n == len(images) - 1:  # the last image fills the rest of its row
            right = width
        cell = ImageOps.fit(
            _open(data, max(width, height)), (right - left, bottom - top), Image.Resampling.LANCZOS
        )
        canvas.paste(cell, (left, top))
    return _png(canvas)
