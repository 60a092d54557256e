"""The Forge through real Redis, SQLite and worker processes: train a LoRA, use it, guard it."""

from __future__ import annotations

import asyncio
import io
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
from PIL import Image, ImageDraw

from studio import jobs
from studio.app import Studio, open_studio
from studio.entities import Lora, Requester
from studio.errors import (
    DatasetRejected,
    InvalidRecipe,
    NameTaken,
    NotYours,
    QuotaExceeded,
    UnknownLora,
)
from studio.forge import TrainingRequest
from studio.training import TrainingImage, TrainingOptions
from tests.integration.workers import Deployment

ALICE = Requester(id="cli:alice", name="alice", server="guild-1")
BOB = Requester(id="cli:bob", name="bob", server="guild-1")
ADMIN = Requester(id="cli:admin", name="admin", server="guild-1", admin=True)
QUICK = TrainingOptions(steps=40, rank=4, learning_rate=1e-2, resolution=64)
# For runs that get cancelled: the most steps allowed (minutes on a CPU), so they are surely
# still running when the test acts on them.
LONG = TrainingOptions(steps=5000, rank=4, learning_rate=1e-3, resolution=64)


def subject(seed: int, size: tuple[int, int] = (96, 96), fmt: str = "PNG") -> bytes:
    """A small picture of "the subject": a red disc on a varied background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w * 0.25, h * 0.25, w * 0.75, h * 0.75), fill=(220, 30, 30))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def dataset(count: int = 4) -> list[TrainingImage]:
    return [TrainingImage(subject(i)) for i in range(count)]


@pytest.fixture(scope="module")
def forge_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(
        data_dir=tmp_path_factory.mktemp("forge"),
        models_file=tiny_catalogue,
        extra_env={"ATELIER_JOB_LEASE_S": "3", "ATELIER_TRAINING_QUOTA_PER_DAY": "20"},
    )
    for kind in ("inference", "post", "training"):
        dep.start_worker(kind)
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
async def studio(forge_deployment: Deployment) -> AsyncIterator[Studio]:
    await forge_deployment.wait_ready(("inference", "post", "training"))
    async with open_studio(forge_deployment.settings()) as studio:
        yield studio


@pytest.fixture(scope="module")
async def trained(studio: Studio) -> Lora:
    """One LoRA trained for the module: alice's `redball`, shared with her server."""
    request = TrainingRequest("redball", "zqx", options=QUICK, visibility="server")
    lora, plan = await studio.forge.train(ALICE, request, dataset())
    assert lora.status == "queued" and plan.params.steps == 40
    return await asyncio.wait_for(studio.forge.follow(lora.id), 240)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


async def test_training_lowers_the_loss_and_registers_the_model(studio: Studio, trained: Lora) -> None:
    assert trained.status == "done", trained.error
    assert trained.step == 40 and trained.attempts == 1
    assert len(trained.losses) >= 2 and trained.losses[-1] < trained.losses[0] * 0.8
    assert trained.weights and trained.kohya and trained.sample and trained.comparison
    comparison = Image.open(io.BytesIO(await studio.artifacts.read(trained.comparison)))
    assert comparison.width >= 128 and comparison.height >= 128  # base row above the LoRA row
    models = await studio.models.available(BOB)  # shared with the server: bob sees it too
    assert [lora.name for lora in models.loras] == ["redball"]


async def test_generation_with_the_lora_matches_training_bit_for_bit(studio: Studio, trained: Lora) -> None:
    """A fresh process (the inference worker) loads the saved adapter and gets the same pixels."""
    seed = studio.forge.params_of(trained).seed % (2**32 - 8)
    with_lora = await studio.generations.imagine(ALICE, f"zqx --seed {seed} --batch 2 --lora redball:1")
    finished = await asyncio.wait_for(studio.results.follow(with_lora.id), 120)
    sample = await studio.artifacts.read(trained.sample or "")
    first = await studio.artifacts.read(finished.images[0].artifact)
    assert np.array_equal(pixels(first), pixels(sample))

    without = await studio.generations.imagine(ALICE, f"zqx --seed {seed} --batch 2")
    plain = await asyncio.wait_for(studio.results.follow(without.id), 120)
    assert not np.array_equal(pixels(await studio.artifacts.read(plain.images[0].artifact)), pixels(first))

    # Switching back and forth on the warm pipeline: weight 0 is the base model exactly.
    zero = await studio.generations.imagine(ALICE, f"zqx --seed {seed} --batch 2 --lora redball:0")
    off = await asyncio.wait_for(studio.results.follow(zero.id), 120)
    assert np.array_equal(
        pixels(await studio.artifacts.read(off.images[0].artifact)),
        pixels(await studio.artifacts.read(plain.images[0].artifact)),
    )
    assert off.generation.load_seconds == 0  # the base pipeline was never reloaded


async def test_exports_and_visibility(
    studio: Studio, trained: Lora, forge_deployment: Deployment, tmp_path: Path
) -> None:
    name, data = await studio.models.export(ALICE, "redball", "kohya")
    assert name == "redball-v1-kohya.safetensors"
    assert all(key.startswith(("lora_unet_", "lora_te")) for key in safetensors.torch.load(data))
    name, data = await studio.models.export(ADMIN, "redball", "diffusers")  # a server admin may
    assert name == "redball-v1.safetensors"
    assert all(key.startswith(("unet.", "text_encoder")) for key in safetensors.torch.load(data))
    # The command line (the studio's operator) exports any model, e.g. one too large for Discord.
    done = await asyncio.to_thread(
        forge_deployment.cli, "models", "export", "redball", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "redball-v1-kohya.safetensors").read_bytes() == (
        await studio.models.export(ALICE, "redball", "kohya")
    )[1]
    listed = await asyncio.to_thread(forge_deployment.cli, "models", "list")
    assert "redball v1: LoRA on tiny-sd15, trigger zqx, server" in listed.stdout
    with pytest.raises(NotYours):
        await studio.models.export(BOB, "redball", "diffusers")  # bob may use it, not take it
    stranger = Requester(id="cli:carol", name="carol", server="guild-2")
    with pytest.raises(UnknownLora):
        await studio.models.lora(stranger, "redball")  # another server: it does not exist
    with pytest.raises(UnknownLora):
        await studio.generations.imagine(stranger, "zqx --lora redball")
    with pytest.raises(InvalidRecipe, match="SD15"):
        await studio.generations.imagine(ALICE, "zqx --model tiny-sdxl --lora redball")


async def test_private_models_are_invisible_to_others(studio: Studio) -> None:
    request = TrainingRequest("secretball", "qqz", options=TrainingOptions(steps=10, rank=2, resolution=64))
    lora, _ = await studio.forge.train(BOB, request, dataset(3))
    done = await asyncio.wait_for(studio.forge.follow(lora.id), 240)
    assert done.status == "done", done.error
    assert "secretball" not in [m.name for m in (await studio.models.available(ALICE)).loras]
    with pytest.raises(UnknownLora):
        await studio.generations.imagine(ALICE, "qqz --lora secretball")
    with pytest.raises(UnknownLora):  # deleting it is refused as if it did not exist
        await studio.models.delete(ALICE, "secretball")
    # A taken name is refused for others, and for its owner unless a new version is asked for.
    with pytest.raises(NameTaken):
        await studio.forge.plan(ALICE, TrainingRequest("SecretBall", "abc", options=QUICK), dataset(3))
    with pytest.raises(InvalidRecipe, match="new_version"):
        await studio.forge.plan(BOB, TrainingRequest("secretball", "qqz", options=QUICK), dataset(3))
    plan = await studio.forge.plan(
        BOB, TrainingRequest("secretball", "qqz", options=QUICK, new_version=True), dataset(3)
    )
    assert plan.version == 2
    removed = await studio.models.delete(BOB, "secretball")
    assert [lora.version for lora in removed] == [1]
    with pytest.raises(UnknownLora):
        await studio.models.lora(BOB, "secretball")


@pytest.mark.parametrize(
    ("images", "refusal"),
    [
        (dataset(2), "at least 3"),
        ([TrainingImage(subject(0, (8, 8)))] * 500, "at most 50"),
        (
            [*dataset(3), TrainingImage(b"not an image at all")],
            "image 4 was refused: That file is not an image",
        ),
        ([*dataset(3), TrainingImage(subject(1)[:200])], "truncated or corrupt"),
        ([*dataset(3), TrainingImage(subject(5, (20, 20)))], "image 4 is 20x20"),
        ([*dataset(3), TrainingImage(subject(5, (600, 64)))], "too narrow"),
    ],
    ids=["two", "five-hundred", "not-image", "truncated", "too-small", "too-narrow"],
)
async def test_bad_datasets_are_refused_before_anything_is_queued(
    studio: Studio, images: list[TrainingImage], refusal: str
) -> None:
    before = await studio.queue.depth(jobs.TRAINING)
    with pytest.raises(DatasetRejected, match=refusal):
        await studio.forge.train(BOB, TrainingRequest("badset", "zzq", options=QUICK), images)
    assert await studio.queue.depth(jobs.TRAINING) == before
    assert await studio.store.loras.named("badset") == []


async def test_a_decompression_bomb_is_refused_from_its_header(studio: Studio) -> None:
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")  # 400 MP, a few KB on disk
    with pytest.raises(DatasetRejected, match="megapixels"):
        await studio.forge.train(
            BOB, TrainingRequest("bomb", "zzq", options=QUICK), [*dataset(3), TrainingImage(bomb.getvalue())]
        )


async def test_mixed_sizes_and_formats_are_cropped_to_the_resolution(studio: Studio) -> None:
    images = [
        TrainingImage(subject(0, (96, 96))),
        TrainingImage(subject(1, (160, 90), "JPEG")),
        TrainingImage(subject(2, (70, 120), "WEBP")),
    ]
    plan = await studio.forge.plan(BOB, TrainingRequest("mixed", "zzq", options=QUICK), images)
    assert [Image.open(io.BytesIO(png)).size for png in plan.images] == [(64, 64)] * 3


@pytest.mark.parametrize(
    ("name", "field"),
    [("../evil", "name"), ("con", "name"), ("a/b", "name"), ("x", "name"), ("ok_name", "trigger")],
)
async def test_unsafe_names_and_bad_triggers_are_refused(studio: Studio, name: str, field: str) -> None:
    trigger = "two words" if field == "trigger" else "zzq"
    with pytest.raises(InvalidRecipe) as refused:
        await studio.forge.plan(BOB, TrainingRequest(name, trigger, options=QUICK), dataset(3))
    assert refused.value.field == field


async def test_caption_warnings(studio: Studio) -> None:
    images = [TrainingImage(subject(i), f"a dog with a red ball on grass, photo {i}") for i in range(3)]
    plan = await studio.forge.plan(BOB, TrainingRequest("warned", "dog", options=QUICK), images)
    assert any("everyday word" in w for w in plan.warnings)
    shared = [w for w in plan.warnings if w.startswith("Every caption")]
    assert shared and "`ball`, `grass`, `photo`, `red`:" in shared[0]  # not the trigger itself
    assert plan.captions[0] == "a dog with a red ball on grass, photo 0"  # the trigger was already there
    quiet = [TrainingImage(subject(i), caption) for i, caption in enumerate(("on grass", "at night", None))]
    plan = await studio.forge.plan(BOB, TrainingRequest("quiet", "zqx", options=QUICK), quiet)
    assert plan.warnings == [] and plan.captions == ["zqx, on grass", "zqx, at night", "zqx"]


async def test_roles_and_quota_decide_who_may_train(studio: Studio, forge_deployment: Deployment) -> None:
    with pytest.raises(NotYours):
        await studio.forge.set_training_role(BOB, "role-artists", True)
    assert await studio.forge.set_training_role(ADMIN, "role-artists", True) == ["role-artists"]
    try:
        with pytest.raises(NotYours, match="only these roles"):
            await studio.forge.plan(BOB, TrainingRequest("roled", "zzq", options=QUICK), dataset(3))
        artist = Requester(id="cli:bob", name="bob", server="guild-1", roles=frozenset({"role-artists"}))
        await studio.forge.plan(artist, TrainingRequest("roled", "zzq", options=QUICK), dataset(3))
        await studio.forge.plan(ADMIN, TrainingRequest("roled", "zzq", options=QUICK), dataset(3))
    finally:
        await studio.forge.set_training_role(ADMIN, "role-artists", False)

    # The quota: at most N runs a day (20 in this deployment), and one at a time.
    dave = Requester(id="cli:dave", name="dave", server="guild-1")
    first, _ = await studio.forge.train(dave, TrainingRequest("daveball", "zzq", options=LONG), dataset(3))
    with pytest.raises(QuotaExceeded, match="one at a time"):
        await studio.forge.plan(dave, TrainingRequest("daveball2", "zzq", options=QUICK), dataset(3))
    with pytest.raises(NotYours):
        await studio.forge.cancel(BOB, first.id)
    await studio.forge.cancel(ADMIN, first.id)
    ended = await asyncio.wait_for(studio.forge.follow(first.id), 120)
    assert ended.status == "cancelled"


@pytest.fixture
def crashy(tiny_catalogue: Path, tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(data_dir=tmp_path, models_file=tiny_catalogue, extra_env={"ATELIER_JOB_LEASE_S": "3"})
    yield dep
    dep.stop()


async def test_a_killed_training_worker_shows_retrying_then_resumes(crashy: Deployment) -> None:
    victim = crashy.start_worker("training")
    await crashy.wait_ready(("training",))
    stepping, retrying, second = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def on_update(lora: Lora, event: jobs.ProgressEvent | None) -> None:
        if lora.status == "running" and lora.step >= 5:
            (second if lora.attempts >= 2 else stepping).set()
        if lora.status == "retrying":
            retrying.set()

    async with open_studio(crashy.settings()) as studio:
        lora, _ = await studio.forge.train(ALICE, TrainingRequest("longrun", "zzq", options=LONG), dataset(3))
        follow = asyncio.create_task(studio.forge.follow(lora.id, on_update))
        await asyncio.wait_for(stepping.wait(), 120)
        victim.send_signal(signal.SIGKILL)
        victim.wait()

        await asyncio.wait_for(retrying.wait(), 30)  # lease (3 s) + the follower's check (5 s)
        stored = await studio.store.loras.get(lora.id)
        assert stored.status == "retrying" and "training worker stopped" in (stored.error or "")
        crashy.start_worker("training")
        await asyncio.wait_for(second.wait(), 90)
        await studio.forge.cancel(ALICE, lora.id)
        ended = await asyncio.wait_for(follow, 60)
        assert ended.status == "cancelled" and ended.attempts == 2
