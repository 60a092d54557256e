"""[safety] in models.toml, and the grid's blurred tiles (no models loaded)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from PIL import Image

from gpu_worker.grid import compose_grid
from studio.catalogue import load_catalogue
from studio.errors import CatalogueError

MODEL = '[models.a]\nfamily = "sd15"\nsource = "org/model"\ndescription = "a"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(MODEL + text)
    return path


def test_no_safety_table_means_no_classifier(tmp_path: Path) -> None:
    assert load_catalogue(write(tmp_path, "")).safety is None


def test_a_hub_id_and_its_defaults(tmp_path: Path) -> None:
    safety = load_catalogue(write(tmp_path, '[safety]\nsource = "Falconsai/nsfw_image_detection"\n')).safety
    assert safety is not None
    assert safety.source == "Falconsai/nsfw_image_detection"
    assert safety.flagged_labels == ("nsfw",) and safety.threshold == 0.8


def test_a_local_folder_resolves_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "classifier").mkdir()
    (tmp_path / "classifier" / "config.json").write_text("{}")
    text = '[safety]\nsource = "./classifier"\nflagged_labels = ["porn", "hentai"]\nthreshold = 0.5\n'
    safety = load_catalogue(write(tmp_path, text)).safety
    assert safety is not None and safety.source == str((tmp_path / "classifier").resolve())
    assert safety.flagged_labels == ("porn", "hentai") and safety.threshold == 0.5


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('source = "./nowhere"', "not a transformers model folder"),
        ('source = "org/x"\nthreshold = -1', "threshold"),
        ('source = "org/x"\nflagged_labels = []', "flagged_labels"),
        ('source = "org/x"\nlabels = ["nsfw"]', "labels"),
        ("threshold = 0.5", "source"),
    ],
)
def test_bad_safety_tables_name_the_field(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(CatalogueError, match=expected):
        load_catalogue(write(tmp_path, f"[safety]\n{body}\n"))


def png(colour: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (64, 64), colour)
    for x in range(0, 64, 8):  # detail that a blur must wipe out
        for y in range(64):
            image.putpixel((x, y), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def tile(grid: bytes, column: int) -> Image.Image:
    sheet = Image.open(io.BytesIO(grid)).convert("RGB")
    gap = max(2, 64 // 64)
    return sheet.crop((column * (64 + gap), 0, column * (64 + gap) + 64, 64))


def test_only_the_flagged_tiles_are_blurred() -> None:
    images = [png((200, 0, 0)), png((0, 0, 200))]
    plain = compose_grid(images, labels=False)
    safe = compose_grid(images, labels=False, blur=frozenset({1}))
    assert tile(safe, 0).tobytes() == tile(plain, 0).tobytes()
    blurred = tile(safe, 1)
    assert blurred.tobytes() != tile(plain, 1).tobytes()
    # The stripes are gone: neighbouring pixels of a blurred tile barely differ.
    row = [blurred.getpixel((x, 32)) for x in range(64)]
    assert max(abs(a[0] - b[0]) for a, b in itertools.pairwise(row)) < 16
