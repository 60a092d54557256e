"""Checks on uploaded images, made on the header alone: nothing is decoded before they pass."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from studio.errors import StudioError

ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP"})
WORKER_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})  # all an inference worker decodes


class UploadRejected(StudioError):
    pass


@dataclass(frozen=True)
class UploadInfo:
    format: str
    width: int
    height: int


def inspect_image(data: bytes, max_bytes: int, max_pixels: int) -> UploadInfo:
    """Size, format and pixel count of an upload, read from its header without decoding it."""
    if not data:
        raise UploadRejected("The file is empty.")
    if len(data) > max_bytes:
        raise UploadRejected(
            f"The image is {len(data) / 1_048_576:.1f} MiB; the limit is {max_bytes / 1_048_576:.0f} MiB."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                fmt, (width, height) = image.format or "", image.size
    except Image.DecompressionBombError:
        raise UploadRejected(
            f"The image has far too many pixels; the limit is {max_pixels / 1e6:.1f} megapixels."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise UploadRejected("That file is not an image I can read (PNG, JPEG, WebP, GIF or BMP).") from None
    if fmt not in ACCEPTED_FORMATS:
        raise UploadRejected(f"{fmt or 'This'} images are not supported; use PNG, JPEG, WebP, GIF or BMP.")
    if width * height > max_pixels:
        raise UploadRejected(
            f"The image is {width}x{height} pixels; the limit is {max_pixels / 1e6:.1f} megapixels."
        )
    return UploadInfo(fmt, width, height)


def verify_image(data: bytes, max_bytes: int, max_pixels: int) -> UploadInfo:
    """inspect_image, then a full decode to catch truncated or corrupt files.

    Decoding is pixel work: call this in a thread, never on an event loop. The header check
    runs first, so a decompression bomb is refused before any pixel is decoded.
    """
    info = inspect_image(data, max_bytes, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except (OSError, ValueError, SyntaxError):
        raise UploadRejected("The image file is truncated or corrupt; please upload it again.") from None
    return info


def for_worker(data: bytes) -> bytes:
    """An accepted upload as an inference worker takes it: PNG, JPEG and WebP unchanged, a GIF or
    BMP (first frame) re-encoded as PNG. Workers decode nothing else, whoever wrote the payload.

    Pixel work: call it in a thread. The recipe keeps the digest of the upload as it came.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=sorted(ACCEPTED_FORMATS)) as image:
            if image.format in WORKER_FORMATS:
                return data
            out = io.BytesIO()
            frame = image.convert("RGBA" if image.has_transparency_data else "RGB")
            frame.save(out, format="PNG")
    return out.getvalue()
