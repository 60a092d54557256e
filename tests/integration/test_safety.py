"""Content policy through real Redis and real workers: the tiny safety classifier flags images
by the catalogue's threshold (0: every image, above 1: none), and the blocklist refuses prompts."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PIL import Image

from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.errors import InvalidRecipe, NotYours
from studio.policy import PolicyError, PromptBlocked
from tests.integration.workers import Deployment

ADMIN = Requester(id="discord:1", name="ada", admin=True, server="g-safety")
MEMBER = Requester(id="discord:2", name="bo", server="g-safety")


def with_safety(catalogue: Path, classifier: Path, threshold: float) -> str:
    return (
        catalogue.read_text()
        + f'\n[safety]\nsource = "{classifier}"\nflagged_labels = ["nsfw"]\nthreshold = {threshold}\n'
    )


@pytest.fixture(scope="module")
def safety_deployment(
    tiny_catalogue: Path, tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("safety")
    models = folder / "models.toml"
    models.write_text(with_safety(tiny_catalogue, tiny_models["tiny-safety"], 0.0))
    dep = Deployment(data_dir=folder / "data", models_file=models)
    dep.data_dir.mkdir()
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def safety_studio(safety_deployment: Deployment) -> AsyncIterator[Studio]:
    await safety_deployment.wait_ready()
    async with open_studio(safety_deployment.settings()) as studio:
        yield studio


def pixels(png: bytes) -> bytes:
    return Image.open(io.BytesIO(png)).convert("RGB").tobytes()


async def test_threshold_zero_flags_every_image_and_blurs_its_tile(
    safety_deployment: Deployment, safety_studio: Studio
) -> None:
    studio = safety_studio
    generation = await studio.generations.imagine(MEMBER, "a lighthouse --batch 2 --seed 7")
    finished = await studio.results.follow(generation.id)
    assert finished.generation.status == "done", safety_deployment.logs()
    assert await studio.store.policy.flagged_indices(generation.id) == [0, 1]
    row = await studio.store._one(
        "SELECT safety_label, safety_score FROM images WHERE generation_id = ? AND idx = 0", (generation.id,)
    )
    assert row is not None and row["safety_label"] == "nsfw" and 0.0 <= row["safety_score"] <= 1.0
    safe = await studio.store.policy.safe_grid(generation.id)
    assert safe, "a flagged batch gets a blurred grid"
    grid = finished.generation.grid_artifact
    assert grid is not None and safe != grid
    blurred, clear = await studio.artifacts.read(safe), await studio.artifacts.read(grid)
    assert Image.open(io.BytesIO(blurred)).size == Image.open(io.BytesIO(clear)).size
    assert pixels(blurred) != pixels(clear)


async def test_threshold_above_one_flags_nothing(
    safety_deployment: Deployment, safety_studio: Studio
) -> None:
    # The worker re-reads its catalogue when the file changes: no restart.
    models = safety_deployment.models_file
    models.write_text(models.read_text().replace("threshold = 0.0", "threshold = 1.01"))
    studio = safety_studio
    generation = await studio.generations.imagine(MEMBER, "a lighthouse --batch 2 --seed 7")
    finished = await studio.results.follow(generation.id)
    assert finished.generation.status == "done", safety_deployment.logs()
    assert await studio.store.policy.flagged_indices(generation.id) == []
    assert await studio.store.policy.safe_grid(generation.id) is None


async def test_blocklist_refuses_prompts_and_negatives_of_that_server_only(safety_studio: Studio) -> None:
    policy = safety_studio.policy
    with pytest.raises(NotYours):
        await policy.add(MEMBER, "word", "gore")
    with pytest.raises(PolicyError):
        await policy.add(ADMIN, "regex", "(a+)+")
    await policy.add(ADMIN, "word", "Gore")
    await policy.add(ADMIN, "regex", r"blood ?bath")
    assert [(r.kind, r.pattern) for r in await policy.rules(ADMIN)] == [
        ("word", "gore"),
        ("regex", "blood ?bath"),
    ]
    with pytest.raises(PromptBlocked) as refused:
        await safety_studio.generations.prepare(MEMBER, "a GORE scene --seed 1")
    assert "gore" not in str(refused.value).lower()
    with pytest.raises(PromptBlocked):
        await safety_studio.generations.prepare(MEMBER, "a field --no bloodbath")
    with pytest.raises(InvalidRecipe, match="Row 2"):
        await safety_studio.generations.prepare_batch(
            MEMBER, ["a field", "gore"], None, private=None, project="default", thread_id=None, limit=5
        )
    # Another server, and no server at all, have their own (empty) lists.
    await safety_studio.generations.prepare(Requester(id="discord:3", name="cy", server="other"), "gore")
    await safety_studio.generations.prepare(Requester(id="cli:dan", name="dan"), "gore")
    assert await policy.remove(ADMIN, "word", "GORE")
    await safety_studio.generations.prepare(MEMBER, "a gore scene")
