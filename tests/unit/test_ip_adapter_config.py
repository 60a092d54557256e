"""The catalogue's [ip_adapter.<family>] tables: paths made absolute, hub paths kept, mistakes named."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.catalogue import load_catalogue
from studio.errors import CatalogueError
from studio.ip_adapters import hub_parts, is_hub_path

MODEL = """
[models.base]
family = "sd15"
source = "org/base-model"
description = "a model"
"""


def catalogue(tmp_path: Path, tables: str) -> Path:
    (tmp_path / "encoder").mkdir()
    (tmp_path / "encoder" / "config.json").write_text("{}")
    (tmp_path / "style.safetensors").write_bytes(b"")
    path = tmp_path / "models.toml"
    path.write_text(MODEL + tables, encoding="utf-8")
    return path


def test_local_and_hub_sources(tmp_path: Path) -> None:
    path = catalogue(
        tmp_path,
        """
[ip_adapter.sd15]
image_encoder = "./encoder"
style = "./style.safetensors"
character = "h94/IP-Adapter/models/ip-adapter-plus-face_sd15.safetensors"
""",
    )
    found = load_catalogue(path).ip_adapters["sd15"]
    assert found.image_encoder == str((tmp_path / "encoder").resolve())
    assert found.style == str((tmp_path / "style.safetensors").resolve())
    assert is_hub_path(found.character or "")
    assert hub_parts(found.character or "") == (
        "h94/IP-Adapter",
        "models/ip-adapter-plus-face_sd15.safetensors",
    )
    (tmp_path / "plain").mkdir()
    assert load_catalogue(catalogue(tmp_path / "plain", "")).ip_adapters == {}  # no table: no references


def test_flux_takes_xlabs_adapter_with_a_whole_repo_as_its_encoder(tmp_path: Path) -> None:
    path = catalogue(
        tmp_path,
        """
[ip_adapter.flux]
image_encoder = "openai/clip-vit-large-patch14"
style = "XLabs-AI/flux-ip-adapter/ip_adapter.safetensors"
""",
    )
    found = load_catalogue(path).ip_adapters["flux"]
    assert found.character is None
    assert is_hub_path(found.image_encoder) and hub_parts(found.image_encoder) == (
        "openai/clip-vit-large-patch14",
        "",
    )
    assert hub_parts(found.style) == ("XLabs-AI/flux-ip-adapter", "ip_adapter.safetensors")
    # A whole repo is an encoder only: an adapter must name its file.
    bad = '[ip_adapter.flux]\nimage_encoder = "./encoder"\nstyle = "XLabs-AI/flux-ip-adapter"'
    (tmp_path / "bad").mkdir()
    with pytest.raises(CatalogueError, match=r"not an IP-Adapter \.safetensors file"):
        load_catalogue(catalogue(tmp_path / "bad", "\n" + bad + "\n"))


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('[ip_adapter.sd9]\nimage_encoder = "./encoder"\nstyle = "./style.safetensors"', "unknown family"),
        (
            '[ip_adapter.sd3]\nimage_encoder = "./encoder"\nstyle = "./style.safetensors"',
            "sd15, sdxl, flux models only",
        ),
        (
            '[ip_adapter.sd15]\nimage_encoder = "./nowhere"\nstyle = "./style.safetensors"',
            "not an image encoder folder",
        ),
        (
            '[ip_adapter.sd15]\nimage_encoder = "./encoder"\nstyle = "./encoder"',
            "not an IP-Adapter .safetensors file",
        ),
        ('[ip_adapter.sd15]\nimage_encoder = "./encoder"', "style"),
        ('[ip_adapter.sd15]\nimage_encoder = "./encoder"\nstyle = "./style.safetensors"\nscale = 1', "scale"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, table: str, words: str) -> None:
    with pytest.raises(CatalogueError, match="ip_adapter") as raised:
        load_catalogue(catalogue(tmp_path, "\n" + table + "\n"))
    assert words in str(raised.value)
