"""An upscale model configured in models.toml, used by a real inference worker (tiny diffusers x4)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from studio.app import Studio, open_studio
from studio.catalogue import load_catalogue
from studio.entities import Requester
from studio.errors import CatalogueError
from tests.integration.workers import Deployment
from tests.unit.test_finishing import _tiny_x4_upscaler

ALICE = Requester(id="cli:alice", name="alice")


@pytest.fixture(scope="module")
def with_upscaler(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny catalogue plus an [upscaler]: a tiny diffusers x4 pipeline on disk."""
    folder = tmp_path_factory.mktemp("upscaler")
    x4 = _tiny_x4_upscaler(folder)
    catalogue = folder / "models.toml"
    catalogue.write_text(
        tiny_catalogue.read_text(encoding="utf-8")
        + f'\n[upscaler]\nid = "x4-tiny"\nkind = "diffusers"\nsource = "{x4}"\nscale = 4\n',
        encoding="utf-8",
    )
    return catalogue


@pytest.fixture(scope="module")
async def studio(with_upscaler: Path) -> AsyncIterator[Studio]:
    dep = Deployment(data_dir=with_upscaler.parent, models_file=with_upscaler)
    dep.start_worker("inference")
    try:
        await dep.wait_ready(("inference",))
        async with open_studio(dep.settings()) as studio:
            yield studio
    finally:
        dep.stop()


async def test_the_configured_model_upscales_through_the_worker(studio: Studio) -> None:
    source = io.BytesIO()
    Image.new("RGB", (40, 24), (200, 120, 30)).save(source, format="PNG")
    finish = await studio.finishing.upscale(
        await studio.finishing.prepare_upscale(ALICE, source.getvalue(), 2)
    )
    assert finish.method == "x4-tiny" and (finish.width, finish.height) == (80, 48)
    _, data = await studio.finishing.finish(ALICE, finish.id)
    assert data is not None and Image.open(io.BytesIO(data)).size == (80, 48)


def test_a_bad_upscaler_entry_names_the_field(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    base = '[models.m]\nfamily = "sd15"\nsource = "org/m"\ndescription = "m"\n'
    for section, field in (
        ('[upscaler]\nkind = "esrgan"\nsource = "x"\n', "kind"),
        ('[upscaler]\nkind = "spandrel"\nsource = "missing.safetensors"\n', "source"),
        ('[upscaler]\nkind = "spandrel"\nsource = "x"\nscale = 5\n', "scale"),
    ):
        models.write_text(base + section, encoding="utf-8")
        with pytest.raises(CatalogueError, match=f"field `{field}`"):
            load_catalogue(models)
