"""Export for a destination: crop to its aspect around a focus point, resize to its exact size,
encode in its format and, when it has one, meet its file-size limit.

The input is an upload or a generation: its pixel count is checked from the header before any
decoding, as in ``decode_init_image``. Lossy formats search the highest quality that fits the
limit; PNG tries harder compression, then a 256/128/64-colour palette. An export never exceeds
its limit: what cannot fit raises ``ExportTooLarge``.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps
from PIL.PngImagePlugin import PngInfo

from studio.finishing import ExportFormat, ExportSpec
from studio.jobs import ExportResult

DEFAULT_QUALITY: dict[ExportFormat, int] = {"jpeg": 92, "webp": 90, "avif": 80}
MIN_QUALITY = 1
PNG_COLOURS = (256, 128, 64)  # palette fallbacks for a PNG over its limit, gentlest first
AVIF_SPEED = 8  # 0 (slowest, smallest) to 10; the quality search encodes several times
WEBP_METHOD = 4  # 0 (fast) to 6 (smallest)
MAX_EXIF_BYTES = 60_000  # a JPEG APP1 segment holds 64 KB
INTEREST_SIDE = 96  # the centre of interest is found on a copy this small
INTEREST_MARGIN = 5.0  # percent: the centre of interest stays this far from the edges
SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")
UNICODE_PREFIX = b"UNICODE\0"  # EXIF UserComment character code, as A1111 writes it (UTF-16 BE)


class ExportTooLarge(Exception):
    """The export cannot be made under the size limit, even at the lowest setting."""


@dataclass(frozen=True)
class _Encoding:
    """How to write one image: everything but the quality."""

    format: ExportFormat
    dpi: int
    parameters: str | None  # embedded when metadata is kept


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode safely: pixel count from the header first, EXIF orientation applied, colours in sRGB.

    RGBA when the image has real transparency, RGB otherwise; no metadata travels in ``info``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        source = Image.open(io.BytesIO(data))
        if source.width * source.height > max_pixels:
            raise ValueError(f"image is {source.width}x{source.height}, above the pixel limit")
        image = ImageOps.exif_transpose(source)
    if image.mode in SIXTEEN_BIT:  # 16-bit grey: a plain convert would clip it to white
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    image = _to_srgb(image)
    if image.has_transparency_data:
        image = image.convert("RGBA")
        if image.getchannel("A").getextrema() == (255, 255):
            image = image.convert("RGB")  # an opaque alpha channel only costs bytes
    else:
        image = image.convert("RGB")
    image.info = {}
    return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert from an embedded colour profile to sRGB, so that no profile need travel."""
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    mode = "RGBA" if image.has_transparency_data else "RGB"
    try:
        converted = ImageCms.profileToProfile(
            image.convert(mode),
            ImageCms.ImageCmsProfile(io.BytesIO(icc)),
            ImageCms.createProfile("sRGB"),
            outputMode=mode,
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: the pixels as they are
    return converted if converted is not None else image


def centre_of_interest(image: Image.Image) -> tuple[float, float]:
    """Where the eye goes, in percent (x, y): the centroid of edges and of what stands out
    from the image's typical tone, on a small copy; (50, 50) for a featureless image."""
    small = image.convert("L")
    small.thumbnail((INTEREST_SIDE, INTEREST_SIDE), Image.Resampling.BILINEAR)
    lum = np.asarray(small, dtype=np.float32) / 255
    edges = np.zeros_like(lum)
    edges[:, 1:] += np.abs(np.diff(lum, axis=1))
    edges[1:, :] += np.abs(np.diff(lum, axis=0))
    weight = edges + 0.5 * np.abs(lum - np.median(lum))
    weight = weight * weight  # the strongest features lead
    total = float(weight.sum())
    if total <= 1e-6:
        return 50.0, 50.0
    height, width = lum.shape
    x = float((weight.sum(axis=0) * (np.arange(width) + 0.5)).sum()) / total / width * 100
    y = float((weight.sum(axis=1) * (np.arange(height) + 0.5)).sum()) / total / height * 100
    low, high = INTEREST_MARGIN, 100 - INTEREST_MARGIN
    return min(high, max(low, x)), min(high, max(low, y))


def crop_box(
    size: tuple[int, int], target: tuple[int, int], focus: tuple[float, float]
) -> tuple[float, float, float, float]:
    """The largest box of the target's aspect, centred on ``focus`` (percent) as far as it can be."""
    width, height = size
    target_width, target_height = target
    if width * target_height > height * target_width:  # wider than the target: trim the sides
        box_width, box_height = height * target_width / target_height, float(height)
    else:
        box_width, box_height = float(width), width * target_height / target_width
    left = min(max(focus[0] / 100 * width - box_width / 2, 0.0), width - box_width)
    top = min(max(focus[1] / 100 * height - box_height / 2, 0.0), height - box_height)
    return left, top, left + box_width, top + box_height


def export_image(
    png_or_image_bytes: bytes, spec: ExportSpec, parameters: str | None, max_pixels: int
) -> ExportResult:
    """The image as ``spec`` asks: exact preset size, format, dpi, metadata and size limit."""
    image = decode_image(png_or_image_bytes, max_pixels)
    target = spec.target
    if spec.focus_x is not None and spec.focus_y is not None:
        focus = (spec.focus_x, spec.focus_y)
    else:
        focus = centre_of_interest(image)
    box = crop_box(image.size, (target.width, target.height), focus)
    image = image.resize((target.width, target.height), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    image.info = {}
    fmt = spec.chosen_format
    if fmt == "jpeg" and image.mode == "RGBA":
        image = _flatten(image)
    encoding = _Encoding(fmt, target.dpi, parameters if spec.keep_metadata else None)
    limit = spec.limit_kb * 1024 if spec.limit_kb is not None else None
    if fmt == "png":
        data, quality = _fit_png(image, encoding, limit), None
    else:
        data, quality = _fit_lossy(image, encoding, limit)
    return ExportResult(data=data, format=fmt, width=image.width, height=image.height, quality=quality)


def _flatten(image: Image.Image) -> Image.Image:
    """Transparency over white (JPEG has no alpha, and black would show through)."""
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _fit_lossy(image: Image.Image, encoding: _Encoding, limit: int | None) -> tuple[bytes, int]:
    """The format's usual quality when it fits; else the highest quality that does (binary search).

    The lowest quality is tried first, so a hopeless limit fails after two encodings. Size is not
    strictly monotonic in quality: only encodings measured to fit are ever returned.
    """
    quality = DEFAULT_QUALITY[encoding.format]
    data = _encode(image, encoding, quality)
    if limit is None or len(data) <= limit:
        return data, quality
    data = _encode(image, encoding, MIN_QUALITY)
    if len(data) > limit:
        raise ExportTooLarge(_too_large(encoding.format, limit, len(data), f"quality {MIN_QUALITY}"))
    best = (data, MIN_QUALITY)
    low, high = MIN_QUALITY + 1, quality - 1
    while low <= high:
        middle = (low + high) // 2
        data = _encode(image, encoding, middle)
        if len(data) <= limit:
            best, low = (data, middle), middle + 1
        else:
            high = middle - 1
    return best


def _fit_png(image: Image.Image, encoding: _Encoding, limit: int | None) -> bytes:
    """Fast compression; over the limit: the smallest lossless PNG, then palettes of fewer colours."""
    data = _encode(image, encoding, None)
    if limit is None or len(data) <= limit:
        return data
    for candidate in _png_candidates(image):
        data = _encode(candidate, encoding, None, optimize=True)
        if len(data) <= limit:
            return data
    raise ExportTooLarge(_too_large("png", limit, len(data), f"{PNG_COLOURS[-1]} colours"))


def _png_candidates(image: Image.Image) -> Iterator[Image.Image]:
    yield image  # lossless first
    for colours in PNG_COLOURS:  # quantized only when the one before did not fit
        yield _palette(image, colours)


def _palette(image: Image.Image, colours: int) -> Image.Image:
    # Fast octree is the quantizer that handles alpha; it dithers (Floyd-Steinberg) by default.
    return image.quantize(colours, method=Image.Quantize.FASTOCTREE)


def _too_large(fmt: str, limit: int, smallest: int, setting: str) -> str:
    advice = "raise the limit, or export as JPEG, WebP or AVIF" if fmt == "png" else "raise the limit"
    return (
        f"Even at {setting} this {fmt.upper()} export is {math.ceil(smallest / 1024)} KB, over its "
        f"{limit // 1024} KB limit; {advice}."
    )


def _encode(image: Image.Image, encoding: _Encoding, quality: int | None, optimize: bool = False) -> bytes:
    out = io.BytesIO()
    dpi = (encoding.dpi, encoding.dpi)
    if encoding.format == "png":
        image.save(out, format="PNG", pnginfo=_png_text(encoding.parameters), dpi=dpi, optimize=optimize)
        return out.getvalue()
    exif = _exif(encoding.parameters)
    if encoding.format == "jpeg":
        image.save(out, format="JPEG", quality=quality, optimize=True, dpi=dpi, exif=exif)
    elif encoding.format == "webp":
        image.save(out, format="WEBP", quality=quality, method=WEBP_METHOD, exif=exif)
    else:
        image.save(out, format="AVIF", quality=quality, speed=AVIF_SPEED, exif=exif)
    return out.getvalue()


def _png_text(parameters: str | None) -> PngInfo | None:
    if parameters is None:
        return None
    info = PngInfo()
    info.add_text("parameters", parameters)  # tEXt when Latin-1, iTXt (UTF-8) otherwise
    return info


def _exif(parameters: str | None) -> bytes:
    """EXIF holding only the A1111 text as UserComment (what A1111 and sd-parsers read)."""
    if parameters is None:
        return b""
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = UNICODE_PREFIX + parameters.encode(
        "utf-16-be"
    )
    data = exif.tobytes()
    return data if len(data) <= MAX_EXIF_BYTES else b""  # too long for a JPEG: left out
