"""The weightless control maps (gpu_worker.control_map) and the [controlnets] catalogue tables."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gpu_worker.control_map import canny, control_map
from studio.catalogue import load_catalogue
from studio.errors import CatalogueError

LIMITS = (10**7, 10**8)


def rectangle(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle(box, fill=(30, 60, 200))
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def near_border(shape: tuple[int, int], box: tuple[int, int, int, int], band: int) -> np.ndarray:
    """Pixels within ``band`` of the rectangle's outline."""
    x0, y0, x1, y1 = box
    near = np.zeros(shape, dtype=bool)
    near[y0 - band : y1 + band + 1, x0 - band : x1 + band + 1] = True
    near[y0 + band + 1 : y1 - band, x0 + band + 1 : x1 - band] = False
    return near


def test_canny_edges_lie_on_a_drawn_rectangles_border_and_nowhere_else() -> None:
    box = (20, 16, 70, 60)
    edges = canny(rectangle((96, 80), box))
    assert edges.shape == (80, 96)
    assert not edges[~near_border(edges.shape, box, 1)].any()  # nothing away from the border
    x0, y0, x1, y1 = box
    for y in range(y0 + 3, y1 - 2):  # every row crosses the left and right sides ...
        assert edges[y, x0 - 1 : x0 + 2].any() and edges[y, x1 - 1 : x1 + 2].any()
    for x in range(x0 + 3, x1 - 2):  # ... every column the top and bottom
        assert edges[y0 - 1 : y0 + 2, x].any() and edges[y1 - 1 : y1 + 2, x].any()
    perimeter = 2 * ((x1 - x0) + (y1 - y0))
    assert perimeter * 0.9 <= edges.sum() <= perimeter * 1.2  # thin: about one pixel wide


def test_a_flat_image_has_no_edges() -> None:
    assert not canny(Image.new("RGB", (32, 32), (120, 120, 120))).any()


@pytest.mark.parametrize("mode", ["canny", "scribble", "lineart"])
def test_maps_are_white_on_black_pngs_at_the_recipe_size(mode: str) -> None:
    box = (20, 16, 70, 60)
    data = control_map(png(rectangle((96, 80), box)), mode, 96, 80, *LIMITS)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (96, 80) and image.mode == "RGB"
    grey = np.asarray(image.convert("L"))
    assert grey[near_border(grey.shape, box, 4)].max() == 255
    assert grey[~near_border(grey.shape, box, 4)].max() == 0
    if mode == "scribble":  # thicker than the canny lines it comes from
        thin = np.asarray(
            Image.open(io.BytesIO(control_map(png(rectangle((96, 80), box)), "canny", 96, 80, *LIMITS)))
        )
        assert (grey > 127).sum() > 1.5 * (thin[..., 0] > 127).sum()


def test_the_source_is_cropped_to_the_recipe_size_like_an_init_image() -> None:
    data = control_map(png(rectangle((200, 100), (90, 40, 110, 60))), "canny", 64, 64, *LIMITS)
    assert Image.open(io.BytesIO(data)).size == (64, 64)


def test_modes_that_need_an_annotator_and_bad_images_are_refused_in_words() -> None:
    with pytest.raises(ValueError, match="needs an annotator"):
        control_map(png(rectangle((32, 32), (4, 4, 20, 20))), "depth", 32, 32, *LIMITS)
    with pytest.raises(ValueError, match="not a PNG, JPEG or WebP image"):
        control_map(b"plain text", "canny", 32, 32, *LIMITS)


def _catalogue(tmp_path: Path, tables: str) -> Path:
    model = tmp_path / "base"
    model.mkdir()
    (model / "model_index.json").write_text("{}")
    controlnet = tmp_path / "cn"
    controlnet.mkdir()
    (controlnet / "config.json").write_text("{}")
    path = tmp_path / "models.toml"
    path.write_text(f'[models.m]\nfamily = "sd15"\nsource = "base"\ndescription = "m"\n\n{tables}')
    return path


def test_controlnet_tables_resolve_paths_and_keep_hub_ids(tmp_path: Path) -> None:
    catalogue = load_catalogue(
        _catalogue(
            tmp_path,
            '[controlnets.sd15.canny]\nsource = "cn"\n\n'
            '[controlnets.sdxl.depth]\nsource = "diffusers/controlnet-depth-sdxl-1.0"\nannotator = "cn"\n',
        )
    )
    canny_net = catalogue.controlnets[("sd15", "canny")]
    assert canny_net.source == str((tmp_path / "cn").resolve()) and canny_net.ready
    depth = catalogue.controlnets[("sdxl", "depth")]
    assert depth.source == "diffusers/controlnet-depth-sdxl-1.0" and depth.annotator == str(
        (tmp_path / "cn").resolve()
    )
    assert ("sd15", "depth") not in catalogue.controlnets


@pytest.mark.parametrize(
    ("tables", "words"),
    [
        ('[controlnets.flux.canny]\nsource = "cn"\n', "supported for sd15 and sdxl models only"),
        ('[controlnets.sd15.sketch]\nsource = "cn"\n', "unknown control mode"),
        ('[controlnets.sd15.canny]\nsource = "nowhere"\n', "not a model folder"),
        ('[controlnets.sd15.canny]\nsource = "cn"\nstrength = 2\n', "Extra inputs are not permitted"),
    ],
)
def test_bad_controlnet_tables_are_named(tmp_path: Path, tables: str, words: str) -> None:
    with pytest.raises(CatalogueError, match=words):
        load_catalogue(_catalogue(tmp_path, tables))
