"""A single-file SDXL checkpoint built from the tiny model (A1111/LDM layout, by gpu_worker.ldm_convert):
`atelier models add` checks it and writes its catalogue entry; it loads through the worker's own
loading code with kind "file" and paints the folder model's pixels exactly; `atelier models check`
says one line per entry; a generation through Redis and a real worker carries the file's
`Model hash`, which a third-party reader (sd-parsers) reads back."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from sd_parsers import ParserManager

from cli.main import main
from gpu_worker.generate import run
from gpu_worker.pipelines import LoadedModel, load_model
from studio.app import open_studio
from studio.catalogue import load_catalogue
from studio.entities import Requester
from studio.jobs import ModelRef
from studio.recipe import Recipe
from tests.integration.workers import Deployment

ALICE = Requester(id="cli:single-file-alice", name="alice")
HEAD = (
    '# Operator notes: keep this comment\ndefault_model = "tiny-sdxl"\n\n[models.tiny-sdxl]  # the folder\n'
)


def write_catalogue(path: Path, folder: Path) -> Path:
    path.write_text(
        HEAD
        + f'family = "sdxl"\nsource = "{folder}"\ndescription = "tiny sdxl folder"\nsteps = 3\nsize = 64\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def catalogue(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalogue with the tiny SDXL folder, and its single file added by `atelier models add`."""
    folder = tiny_models["tiny-sdxl"]
    path = write_catalogue(tmp_path_factory.mktemp("single") / "models.toml", folder)
    code = main(
        [
            "models",
            "add",
            str(tiny_models["tiny-sdxl.safetensors"]),
            "--id",
            "xl-file",
            "--config",
            str(folder),
            "--description",
            'Tiny SDXL as one "A1111" file',
            "--models-file",
            str(path),
        ]
    )
    assert code == 0
    with path.open("a", encoding="utf-8") as file:  # the operator tunes the new (last) table for tiny sizes
        file.write("steps = 3\nsize = 64\n")
    return path


def test_add_writes_an_entry_that_keeps_the_files_comments(
    catalogue: Path, tiny_models: dict[str, Path]
) -> None:
    text = catalogue.read_text(encoding="utf-8")
    assert text.startswith(HEAD) and '[models."xl-file"]' in text
    entry = load_catalogue(catalogue).get("xl-file")
    assert (entry.family, entry.source_kind, entry.description) == (
        "sdxl",
        "file",
        'Tiny SDXL as one "A1111" file',
    )
    assert entry.source == str(tiny_models["tiny-sdxl.safetensors"].resolve())
    assert entry.config == str(tiny_models["tiny-sdxl"].resolve())


def paint(model: LoadedModel) -> np.ndarray:
    recipe = Recipe(
        model=model.ref.id,
        family="sdxl",
        prompt="a red lighthouse",
        seed=7,
        steps=3,
        guidance=5.0,
        width=64,
        height=64,
    )
    return np.asarray(run(model, recipe, None, lambda s, t: None, threading.Event()).images[0]).astype(int)


def same_picture(one: np.ndarray, other: np.ndarray) -> bool:
    """The same weights through two loading paths: identical but for float rounding, which some
    library versions leave at one level in a few pixels (a layout or processor difference)."""
    difference = np.abs(one - other)
    return bool(difference.max() <= 1 and (difference > 0).mean() < 0.01)


def test_the_single_file_paints_the_folder_models_pixels(
    catalogue: Path, tiny_models: dict[str, Path]
) -> None:
    entry = load_catalogue(catalogue).get("xl-file")
    from_file = load_model(entry.ref(), "cpu", torch.float32)
    assert from_file.ref.kind == "file"
    folder = load_model(
        ModelRef(id="tiny-sdxl", family="sdxl", source=str(tiny_models["tiny-sdxl"])), "cpu", torch.float32
    )
    assert same_picture(paint(from_file), paint(folder))


def test_a_file_without_its_vae_takes_it_from_config(
    tiny_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = load_file(tiny_models["tiny-sdxl.safetensors"])
    no_vae = tmp_path / "no-vae.safetensors"
    save_file({k: v for k, v in weights.items() if not k.startswith("first_stage_model.")}, no_vae)
    catalogue = write_catalogue(tmp_path / "models.toml", tiny_models["tiny-sdxl"])
    capsys.readouterr()
    assert main(["models", "add", str(no_vae), "--models-file", str(catalogue)]) == 2
    assert "no-vae.safetensors has no vae; set `config`" in capsys.readouterr().err
    add = [
        "models",
        "add",
        str(no_vae),
        "--config",
        str(tiny_models["tiny-sdxl"]),
        "--models-file",
        str(catalogue),
    ]
    assert main(add) == 0
    from_file = load_model(load_catalogue(catalogue).get("no-vae").ref(), "cpu", torch.float32)
    folder = load_model(
        ModelRef(id="tiny-sdxl", family="sdxl", source=str(tiny_models["tiny-sdxl"])), "cpu", torch.float32
    )
    assert same_picture(paint(from_file), paint(folder))


def test_refusals_write_nothing(
    catalogue: Path, tiny_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = catalogue.read_text(encoding="utf-8")
    single = str(tiny_models["tiny-sdxl.safetensors"])
    pickle = tmp_path / "old.ckpt"
    pickle.write_bytes(b"\x80\x02}q\x00.")
    cases = [
        (
            ["--family", "sd15", "--id", "other"],
            single,
            "not SD 1.5; leave out --family or give --family sdxl",
        ),
        (
            ["--id", "xl-file", "--config", str(tiny_models["tiny-sdxl"])],
            single,
            "already has a model `xl-file`",
        ),
        ([], str(pickle), "pickle checkpoint, and loading a pickle can run any code"),
        ([], str(tmp_path / "absent.safetensors"), "does not exist"),
        (["--id", "no-config"], single, "not in this machine's Hugging Face cache"),
    ]
    for extra, source, expected in cases:
        capsys.readouterr()
        assert main(["models", "add", source, "--models-file", str(catalogue), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err
        assert "Traceback" not in err
    assert catalogue.read_text(encoding="utf-8") == before


def test_check_says_one_line_per_entry(
    catalogue: Path, tiny_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checked = tmp_path / "models.toml"
    single, folder = tiny_models["tiny-sdxl.safetensors"], tiny_models["tiny-sdxl"]
    checked.write_text(
        catalogue.read_text(encoding="utf-8")
        + f'\n[models.mislabelled]\nfamily = "sd15"\nsource = "{single}"\ndescription = "d"\n'
        + '\n[models.gone]\nfamily = "sdxl"\nsource = "/nowhere/at/all.safetensors"\ndescription = "d"\n'
        + f'\n[models.wrong-folder]\nfamily = "sd15"\nsource = "{folder}"\ndescription = "d"\n'
        + f'\n[models.no-config]\nfamily = "sdxl"\nsource = "{single}"\ndescription = "d"\n',
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["models", "check", "--models-file", str(checked)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[:2] == ["tiny-sdxl: ok, sdxl, folder", "xl-file: ok, sdxl, file"]
    assert lines[2].startswith(
        "mislabelled: FAILED, sd15, file: field `family`: tiny-sdxl.safetensors is a checkpoint"
    )
    assert lines[3].startswith(
        "gone: FAILED, sdxl, file: field `source`: source '/nowhere/at/all.safetensors' points"
    )
    assert lines[4].startswith("wrong-folder: FAILED, sd15, folder: family mismatch")
    assert lines[5].startswith(
        "no-config: FAILED, sdxl, file: fails to load: the single file takes its configs"
    )
    assert len(lines) == 6


@pytest.fixture(scope="module")
def workers(catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(data_dir=tmp_path_factory.mktemp("single-studio"), models_file=catalogue)
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


async def test_a_generation_from_the_file_carries_its_model_hash(
    workers: Deployment, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    model_hash = hashlib.sha256(tiny_models["tiny-sdxl.safetensors"].read_bytes()).hexdigest()[:10]
    await workers.wait_ready()
    async with open_studio(workers.settings()) as studio:
        started = await studio.generations.imagine(ALICE, "a harbour --model xl-file --seed 11 --batch 1")
        done = await asyncio.wait_for(studio.results.follow(started.id), 120)
        png = await studio.artifacts.read(done.images[0].artifact)
    assert f"Model hash: {model_hash}, Model: xl-file" in Image.open(io.BytesIO(png)).text["parameters"]
    path = tmp_path / "xl-file.png"
    path.write_bytes(png)
    info = ParserManager().parse(path)
    assert info is not None
    assert [(m.name, m.hash) for m in info.models] == [("xl-file", model_hash)]
