"""Flux.1 and SD 3.5 through Redis and a real worker on the tiny models: batches, reruns, img2img,
inpaint, cancel, and each family's own prompt rules."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio import jobs
from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.errors import GenerationCancelled, GenerationFailed, InvalidRecipe
from studio.results import Finished
from tests.integration.workers import Deployment

ALICE = Requester(id="cli:alice", name="alice")
FAMILY_MODELS = ["tiny-flux", "tiny-sd3"]
TIMEOUT = 120


@pytest.fixture(scope="module")
def families_catalogue(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Flux and SD 3.5 models, the Flux one again as a true-CFG, schnell-length entry, and
    SD 1.5 as the default."""
    path = tmp_path_factory.mktemp("families") / "models.toml"
    path.write_text(
        f'''default_model = "tiny-sd15"

[models.tiny-sd15]
family = "sd15"
source = "{tiny_models["tiny-sd15"]}"
description = "tiny sd15, the default: inline flags choose the others"
steps = 4
size = 64

[models.tiny-flux]
family = "flux"
source = "{tiny_models["tiny-flux"]}"
description = "tiny flux"
steps = 4
size = 64

[models.tiny-flux-cfg]
family = "flux"
source = "{tiny_models["tiny-flux"]}"
description = "tiny flux with true CFG and schnell's T5 length"
steps = 4
size = 64
true_cfg = 4.0
max_tokens = 256

[models.tiny-sd3]
family = "sd3"
source = "{tiny_models["tiny-sd3"]}"
description = "tiny sd3"
steps = 4
size = 64
''',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def families_deployment(
    families_catalogue: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    dep = Deployment(data_dir=tmp_path_factory.mktemp("families-studio"), models_file=families_catalogue)
    dep.start_worker("inference")
    dep.start_worker("post")
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def studio(families_deployment: Deployment) -> AsyncIterator[Studio]:
    await families_deployment.wait_ready()
    async with open_studio(families_deployment.settings()) as opened:
        yield opened


async def generate(studio: Studio, text: str, init_image: bytes | None = None) -> Finished:
    generation = await studio.generations.imagine(ALICE, text, init_image=init_image)
    return await asyncio.wait_for(studio.results.follow(generation.id), TIMEOUT)


async def pngs(studio: Studio, finished: Finished) -> list[bytes]:
    return [await studio.artifacts.read(image.artifact) for image in finished.images]


def rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def picture(size: tuple[int, int], seed: int = 1) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("model", FAMILY_MODELS)
async def test_a_batch_of_two_with_progress_and_the_same_bytes_twice(studio: Studio, model: str) -> None:
    events: list[jobs.ProgressEvent] = []

    async def collect(event: jobs.ProgressEvent) -> None:
        events.append(event)

    text = f"a lighthouse at dusk --model {model} --batch 2 --seed 11 --ar 3:2"
    generation = await studio.generations.imagine(ALICE, text)
    first = await asyncio.wait_for(studio.results.follow(generation.id, collect), TIMEOUT)
    assert [(e.step, e.total) for e in events if e.type == "step"] == [(i, 4) for i in range(1, 5)]
    assert [i.seed for i in first.images] == [11, 12]
    images = await pngs(studio, first)
    assert [Image.open(io.BytesIO(png)).size for png in images] == [(80, 48), (80, 48)]  # 3:2 in 16s
    assert not np.array_equal(rgb(images[0]), rgb(images[1]))  # one generator per image
    parameters = Image.open(io.BytesIO(images[1])).text["parameters"]
    assert "Sampler: Euler, " in parameters and "Seed: 12, " in parameters and f"Model: {model}" in parameters
    again = await generate(studio, text)
    assert await pngs(studio, again) == images  # same recipe, same bytes
    record = await studio.store.get_generation(generation.id)
    assert record.grid_artifact is not None


@pytest.mark.parametrize("model", FAMILY_MODELS)
async def test_img2img_keeps_the_recipe_size_and_inpaint_keeps_unmasked_pixels(
    studio: Studio, model: str
) -> None:
    text = f"an orange sea --model {model} --ar 3:2 --strength 0.5 --seed 2 --batch 2"
    remix = await generate(studio, text, picture((300, 200)))
    first, second = await pngs(studio, remix)
    assert Image.open(io.BytesIO(first)).size == (80, 48)  # not Flux's 1024 px, not the upload's size
    assert Image.open(io.BytesIO(second)).size == (80, 48)
    assert not np.array_equal(rgb(first), rgb(second))
    assert "Denoising strength: 0.5" in Image.open(io.BytesIO(first)).text["parameters"]

    source = picture((100, 60), seed=3)  # worked on at 96x48 (SD 1.5 would take 96x56), delivered at 100x60
    plan = await studio.finishing.prepare_inpaint(
        ALICE, f"a red door --model {model} --seed 4", source, box="25,25,50,50"
    )
    assert (plan.recipe.model, plan.recipe.width, plan.recipe.height) == (model, 96, 48)
    project = await studio.projects.open(ALICE, "inpaint")
    generation = await studio.generations.start(plan, project=project)
    finished = await asyncio.wait_for(studio.results.follow(generation.id), TIMEOUT)
    out, original = rgb((await pngs(studio, finished))[0]), rgb(source)
    assert out.shape == original.shape
    inside = np.zeros((60, 100), dtype=bool)
    inside[15:45, 25:75] = True
    assert np.array_equal(out[~inside], original[~inside])
    assert not np.array_equal(out[inside], original[inside])


@pytest.mark.parametrize("model", FAMILY_MODELS)
async def test_cancel_mid_run(studio: Studio, model: str) -> None:
    generation = await studio.generations.imagine(
        ALICE, f"a long one --model {model} --steps 150 --size 512x512"
    )
    started = asyncio.Event()

    async def on_progress(event: jobs.ProgressEvent) -> None:
        if event.type == "step":
            started.set()

    follow = asyncio.create_task(studio.results.follow(generation.id, on_progress))
    await asyncio.wait_for(started.wait(), 60)
    await studio.generations.cancel(ALICE, generation.id)
    with pytest.raises(GenerationCancelled):
        await asyncio.wait_for(follow, 30)
    assert (await studio.store.get_generation(generation.id)).status == "cancelled"
    assert await studio.store.images_of(generation.id) == []


async def test_flux_refuses_a_negative_prompt_unless_its_entry_has_true_cfg(studio: Studio) -> None:
    with pytest.raises(InvalidRecipe, match=r"^Flux\.1 models take no negative prompt; tiny-flux is"):
        await studio.generations.imagine(ALICE, "a cat --model tiny-flux --no dogs")
    plain = await generate(studio, "a cat --model tiny-flux-cfg --seed 6")
    negative = await generate(studio, "a cat --model tiny-flux-cfg --seed 6 --no dogs")
    (with_negative,) = await pngs(studio, negative)
    assert "Negative prompt: dogs" in Image.open(io.BytesIO(with_negative)).text["parameters"]
    assert not np.array_equal(rgb(with_negative), rgb((await pngs(studio, plain))[0]))  # true CFG applied


async def test_a_prompt_past_the_models_t5_length_is_refused_with_the_count(studio: Studio) -> None:
    long = " ".join(["a"] * 299)  # 300 T5 tokens with the end token: over 256, within Flux dev's 512
    for model, limit in (("tiny-flux-cfg", 256), ("tiny-sd3", 256)):
        with pytest.raises(GenerationFailed) as caught:
            await generate(studio, f"{long} --model {model}")
        assert f"the prompt is 300 T5 tokens long and model {model} reads at most {limit}" in str(
            caught.value
        )
    assert len((await generate(studio, f"{long} --model tiny-flux")).images) == 1


async def test_prompt_weights_work_on_flux_and_are_refused_on_sd3(studio: Studio) -> None:
    with pytest.raises(InvalidRecipe, match=r"SD 3\.5 models take no prompt weights such as `\(red:1\.5\)`"):
        await studio.generations.imagine(ALICE, "a (red:1.5) cat --model tiny-sd3")
    assert len((await generate(studio, "a (red) cat at dusk --model tiny-sd3")).images) == 1  # plain text
    weighted = await generate(studio, "a (red:1.5) cat --model tiny-flux --seed 9")
    plain = await generate(studio, "a red cat --model tiny-flux --seed 9")
    assert not np.array_equal(rgb((await pngs(studio, weighted))[0]), rgb((await pngs(studio, plain))[0]))
