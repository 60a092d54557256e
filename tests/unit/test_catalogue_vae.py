"""A catalogue entry's VAE override: local paths resolve against the catalogue file and must exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.catalogue import load_catalogue
from studio.errors import CatalogueError


def catalogue_with_vae(tmp_path: Path, vae: str) -> Path:
    model = tmp_path / "weights" / "m"
    model.mkdir(parents=True, exist_ok=True)
    (model / "model_index.json").write_text("{}")
    path = tmp_path / "models.toml"
    path.write_text(
        f'[models.m]\nfamily = "sdxl"\nsource = "./weights/m"\ndescription = "m"\nvae = "{vae}"\n',
        encoding="utf-8",
    )
    return path


def test_a_local_vae_folder_or_file_becomes_absolute_and_a_hub_id_passes(tmp_path: Path) -> None:
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")
    (tmp_path / "fix.safetensors").write_bytes(b"x")
    for written, expected in (
        ("./vae", tmp_path / "vae"),
        ("./fix.safetensors", tmp_path / "fix.safetensors"),
    ):
        entry = load_catalogue(catalogue_with_vae(tmp_path, written)).get("m")
        assert entry.vae == str(expected.resolve()) and entry.ref().vae == entry.vae
    hub = load_catalogue(catalogue_with_vae(tmp_path, "madebyollin/sdxl-vae-fp16-fix")).get("m")
    assert hub.vae == "madebyollin/sdxl-vae-fp16-fix"


@pytest.mark.parametrize("vae", ["./missing.safetensors", "./weights", "./vae.ckpt"])
def test_a_vae_that_points_nowhere_names_the_entry_and_field(tmp_path: Path, vae: str) -> None:
    (tmp_path / "vae.ckpt").write_bytes(b"pickle")
    with pytest.raises(CatalogueError, match=r"vae '.*' is neither a VAE folder") as caught:
        load_catalogue(catalogue_with_vae(tmp_path, vae))
    assert "m" in str(caught.value) and "vae" in str(caught.value)
