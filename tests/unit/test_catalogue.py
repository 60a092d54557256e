from __future__ import annotations

from pathlib import Path

import pytest

from studio.catalogue import load_catalogue
from studio.errors import CatalogueError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_catalogues_parse() -> None:
    catalogue = load_catalogue(ROOT / "config" / "models.toml")
    assert catalogue.default == "sd15"
    assert {e.family for e in catalogue} == {"sd15", "sdxl"}
    assert all(e.description for e in catalogue)


def test_relative_local_source_resolves_against_the_file(tmp_path: Path) -> None:
    model = tmp_path / "weights" / "m"
    model.mkdir(parents=True)
    (model / "model_index.json").write_text("{}")
    catalogue = load_catalogue(
        write(tmp_path, '[models.m]\nfamily = "sd15"\nsource = "./weights/m"\ndescription = "d"\n')
    )
    entry = catalogue.get("m")
    assert entry.source == str(model.resolve()) and entry.is_local
    assert entry.default_steps == 25 and entry.native_size == 512


def test_hub_id_passes_through(tmp_path: Path) -> None:
    catalogue = load_catalogue(
        write(tmp_path, '[models.m]\nfamily = "sdxl"\nsource = "org/model"\ndescription = "d"\n')
    )
    assert catalogue.get("m").source == "org/model"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[models.m]\nfamily = "sd15"\nsource = "./nowhere"\ndescription = "d"\n',
            "model `m`, field `source`: source './nowhere' points nowhere",
        ),
        (
            '[models.m]\nfamily = "sd15"\nsource = "/abs/nowhere"\ndescription = "d"\n',
            "model `m`, field `source`: source '/abs/nowhere' points nowhere",
        ),
        ('[models.m]\nfamily = "sd2"\nsource = "org/x"\ndescription = "d"\n', "model `m`, field `family`"),
        ('[models.m]\nfamily = "sd15"\ndescription = "d"\n', "model `m`, field `source`: Field required"),
        ('[models.m]\nfamily = "sd15"\nsource = "org/x"\n', "model `m`, field `description`: Field required"),
        ('[models.m]\nfamily = "sd15"\nsource = "org/x"\ndescription = "d"\nsteps = 900\n', "field `steps`"),
        ('[models.m]\nfamily = "sd15"\nsource = "org/x"\ndescription = "d"\ncolour = 1\n', "field `colour`"),
        ('[models.BAD]\nfamily = "sd15"\nsource = "org/x"\ndescription = "d"\n', "field `id`"),
        ("[models\n", "not valid TOML"),
        ("title = 1\n", "no [models.<id>] tables"),
        (
            'default_model = "x"\n[models.m]\nfamily = "sd15"\nsource = "org/x"\ndescription = "d"\n',
            "default_model 'x'",
        ),
    ],
)
def test_bad_entries_name_the_entry_and_field(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(write(tmp_path, body))
    assert expected in str(caught.value)
    assert str(tmp_path) in str(caught.value)


def test_folder_without_model_index_is_refused(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    with pytest.raises(CatalogueError, match="not a diffusers model folder"):
        load_catalogue(write(tmp_path, '[models.m]\nfamily = "sd15"\nsource = "./w"\ndescription = "d"\n'))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="file not found"):
        load_catalogue(tmp_path / "absent.toml")
