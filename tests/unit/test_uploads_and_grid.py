from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from gpu_worker.grid import columns_for, compose_grid
from studio.uploads import UploadRejected, inspect_image


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def bomb_header(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (the pixel data is never there)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + iend


def test_inspect_accepts_a_real_image() -> None:
    info = inspect_image(png(40, 30), max_bytes=1 << 20, max_pixels=10_000)
    assert (info.format, info.width, info.height) == ("PNG", 40, 30)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"not an image at all", "not an image"),
        (png(40, 30)[:20], "not an image"),
        (bomb_header(100_000, 100_000), "megapixels"),
        (bomb_header(5000, 5000), "5000x5000 pixels"),
        (b"x" * (2 << 20), "MiB"),
    ],
)
def test_inspect_refuses_bad_uploads(data: bytes, words: str) -> None:
    with pytest.raises(UploadRejected, match=words):
        inspect_image(data, max_bytes=1 << 20, max_pixels=4096 * 4096)


def test_grid_layout_and_numbers() -> None:
    assert [columns_for(n) for n in range(1, 9)] == [1, 2, 3, 2, 3, 3, 4, 4]
    grid = Image.open(io.BytesIO(compose_grid([png(96, 64)] * 4)))
    gap = 2
    assert grid.size == (2 * 96 + gap, 2 * 64 + gap)
    unlabeled = Image.open(io.BytesIO(compose_grid([png(96, 64)] * 4, labels=False)))
    assert grid.tobytes() != unlabeled.tobytes()  # the numbers are drawn
    with pytest.raises(ValueError, match="1 to 8"):
        compose_grid([png(8, 8)] * 9)


def test_verify_catches_truncated_files_that_pass_the_header_check() -> None:
    from studio.uploads import verify_image

    whole = png(40, 30)
    assert verify_image(whole, 1 << 20, 10_000).width == 40
    truncated = whole[: len(whole) // 2]
    assert inspect_image(truncated, 1 << 20, 10_000).width == 40  # the header alone looks fine
    with pytest.raises(UploadRejected, match="truncated or corrupt"):
        verify_image(truncated, 1 << 20, 10_000)


def test_board_sheet_and_collage() -> None:
    from gpu_worker.collage import board_sheet, collage

    images = [png(300, 200, (10 * n, 100, 200)) for n in range(5)]
    sheet = Image.open(io.BytesIO(board_sheet(images)))
    assert sheet.width > 256 * 2 and sheet.height >= 256
    canvas = Image.open(io.BytesIO(collage(images, 96, 64)))
    assert canvas.size == (96, 64)
    assert canvas.getpixel((1, 1)) != canvas.getpixel((94, 62))  # different images in different cells
    with pytest.raises(ValueError, match="1 to 16"):
        collage([], 64, 64)
