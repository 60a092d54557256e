"""Outpainting's canvas and mask (studio.outpaint), and the variation strengths' settings."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from studio.defaults import Defaults, validated
from studio.errors import InvalidRecipe
from studio.families import FAMILIES
from studio.outpaint import Canvas, blend_band, pan_canvas, parse_zoom, zoom_canvas

SD15 = FAMILIES["sd15"]


def picture(width: int, height: int) -> bytes:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


def arrays(canvas: Canvas) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(Image.open(io.BytesIO(canvas.image)).convert("RGB"))
    mask = np.asarray(Image.open(io.BytesIO(canvas.mask)).convert("L"))
    return image, mask


def test_zoom_out_2x_centres_the_original_and_masks_the_new_area_and_a_band() -> None:
    source = picture(64, 48)
    canvas = zoom_canvas(source, 2.0, SD15)
    image, mask = arrays(canvas)
    assert canvas.size == (128, 96) and image.shape == (96, 128, 3) and mask.shape == (96, 128)
    assert canvas.placed == (32, 24, 96, 72)
    band = blend_band(64, 48)
    assert canvas.band == band == 4
    assert canvas.kept == (32 + band, 24 + band, 96 - band, 72 - band)
    original = np.asarray(Image.open(io.BytesIO(source)).convert("RGB"))
    assert np.array_equal(image[24:72, 32:96], original)  # the original, untouched, in the centre
    left, top, right, bottom = canvas.kept
    assert set(np.unique(mask)) == {0, 255}
    assert (mask[top:bottom, left:right] == 0).all()  # kept exactly
    keep = np.zeros_like(mask, dtype=bool)
    keep[top:bottom, left:right] = True
    assert (mask[~keep] == 255).all()  # the new area and the band are repainted
    assert np.array_equal(image[0, 32], image[24, 32])  # the new area starts as the stretched edge


def test_zoom_one_and_a_half_and_the_custom_zoom_range() -> None:
    assert zoom_canvas(picture(64, 64), 1.5, SD15).size == (96, 96)
    assert parse_zoom("1.75") == 1.75 and parse_zoom("2x") == 2.0 and parse_zoom(" ×3 ") == 3.0
    for bad, words in (("5", "from 1.1x to 4x"), ("1", "from 1.1x to 4x"), ("big", "is a number")):
        with pytest.raises(InvalidRecipe, match=words):
            parse_zoom(bad)
    with pytest.raises(InvalidRecipe):
        parse_zoom("nan")


@pytest.mark.parametrize(
    ("direction", "size", "placed", "kept"),
    [
        ("left", (96, 64), (32, 0, 96, 64), (36, 0, 96, 64)),
        ("right", (96, 64), (0, 0, 64, 64), (0, 0, 60, 64)),
        ("up", (64, 96), (0, 32, 64, 96), (0, 36, 64, 96)),
        ("down", (64, 96), (0, 0, 64, 64), (0, 0, 64, 60)),
    ],
)
def test_pan_widens_on_its_side_only(
    direction: str,
    size: tuple[int, int],
    placed: tuple[int, int, int, int],
    kept: tuple[int, int, int, int],
) -> None:
    canvas = pan_canvas(picture(64, 64), direction, SD15)  # type: ignore[arg-type]
    assert (canvas.size, canvas.placed, canvas.kept) == (size, placed, kept)
    _, mask = arrays(canvas)
    left, top, right, bottom = kept
    assert (mask[top:bottom, left:right] == 0).all()
    assert int((mask == 255).sum()) == size[0] * size[1] - (right - left) * (bottom - top)


def test_a_canvas_beyond_the_familys_largest_side_is_scaled_down_whole() -> None:
    canvas = zoom_canvas(picture(1024, 512), 2.0, SD15)  # 2048 wide > SD 1.5's 1536
    assert canvas.size == (1536, 768)
    assert canvas.placed == (384, 192, 1152, 576)  # the original at 768x384, still centred
    assert canvas.band == blend_band(768, 384) == 24


def test_variation_strength_settings_are_checked_in_words() -> None:
    assert validated(Defaults(vary_subtle=0.2, vary_strong=0.8), None, None) == Defaults(  # type: ignore[arg-type]
        vary_subtle=0.2, vary_strong=0.8
    )
    for defaults, words in (
        (Defaults(vary_subtle=0.0), "`vary_subtle` is an img2img strength from 0.05 to 1"),
        (Defaults(vary_strong=1.5), "`vary_strong` is an img2img strength from 0.05 to 1"),
        (Defaults(vary_subtle=0.7, vary_strong=0.6), "must be below `vary_strong`"),
    ):
        with pytest.raises(InvalidRecipe, match=words):
            validated(defaults, None, None)  # type: ignore[arg-type]
