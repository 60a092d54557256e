"""A recipe through Redis and arq to a real worker running a real (tiny) diffusers pipeline, and back."""

from __future__ import annotations

import asyncio
import hashlib
import io
import pickle
import signal
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from PIL import Image
from sd_parsers import ParserManager

from studio import jobs
from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.errors import GenerationCancelled, QueueUnavailable
from studio.queue import JobQueue
from tests.integration.workers import ROOT, TEST_REDIS_URL, Deployment

ALICE = Requester(id="cli:alice", name="alice")
PROMPT = "a lighthouse at dusk --ar 3:2 --seed 42"


def pixels(path: Path) -> str:
    return hashlib.sha256(Image.open(path).convert("RGB").tobytes()).hexdigest()


async def test_imagine_command_gives_four_pngs_a_grid_and_identical_reruns(
    deployment: Deployment, studio: Studio, tmp_path: Path
) -> None:
    runs = []
    for n in range(2):
        out = tmp_path / f"run{n}"
        result = await asyncio.to_thread(
            deployment.cli, "imagine", PROMPT, "--batch", "4", "--negative", "blurry, text", "--out", str(out)
        )
        assert result.returncode == 0, result.stderr + deployment.logs()
        files = sorted(out.glob("*.png"))
        assert len(files) == 5 and sum(f.name.endswith("-grid.png") for f in files) == 1
        runs.append(files)
    first, second = runs
    for a, b in zip(first, second, strict=True):
        if not a.name.endswith("-grid.png"):
            assert Image.open(a).size == (96, 64)  # 3:2 on a model whose native size is 64
            assert pixels(a) == pixels(b)
    grid = Image.open(next(f for f in first if f.name.endswith("-grid.png")))
    assert grid.size == (2 * 96 + 2, 2 * 64 + 2)

    parser = ParserManager()
    for index, path in enumerate(f for f in first if not f.name.endswith("-grid.png")):
        info = parser.parse(path)
        assert info is not None, f"sd-parsers could not read {path}"
        assert [p.value for p in info.prompts] == ["a lighthouse at dusk"]
        assert [p.value for p in info.negative_prompts] == ["blurry, text"]
        sampler = info.samplers[0]
        assert sampler.parameters["seed"] == str(42 + index) or int(sampler.parameters["seed"]) == 42 + index
        assert int(sampler.parameters["steps"]) == 4
        assert float(sampler.parameters["cfg_scale"]) == 7.0
        assert info.metadata.get("Size") == "96x64" or (info.metadata.get("size") == "96x64")


async def test_progress_is_published_per_step_and_images_are_recorded_once(studio: Studio) -> None:
    events: list[jobs.ProgressEvent] = []

    async def collect(event: jobs.ProgressEvent) -> None:
        events.append(event)

    generation = await studio.generations.imagine(ALICE, "a red cat --steps 5 --batch 2")
    finished = await studio.results.follow(generation.id, collect)
    assert next(e.type for e in events) == "started"
    assert [(e.step, e.total) for e in events if e.type == "step"] == [(i, 5) for i in range(1, 6)]
    assert finished.generation.status == "done" and finished.generation.attempts == 1
    assert [i.index for i in finished.images] == [0, 1]
    assert [i.seed for i in finished.images] == [generation.recipe.seed, (generation.recipe.seed + 1) % 2**32]
    # Following again (at-least-once delivery) records nothing new.
    again = await studio.results.follow(generation.id)
    assert [i.id for i in again.images] == [i.id for i in finished.images]


async def test_second_job_on_a_warm_model_loads_nothing(studio: Studio) -> None:
    loads = []
    for _ in range(2):
        generation = await studio.generations.imagine(ALICE, "a blue dog --model tiny-sd15")
        finished = await studio.results.follow(generation.id)
        loads.append(finished.generation.load_seconds)
    assert loads[1] == 0.0


async def test_sdxl_shaped_model_and_img2img(studio: Studio) -> None:
    xl = await studio.generations.imagine(ALICE, "a city at night --model tiny-sdxl --ar 16:9 --seed 1")
    xl_done = await studio.results.follow(xl.id)
    data = studio.artifacts.get(xl_done.images[0].artifact)
    assert Image.open(io.BytesIO(data)).size == (xl.recipe.width, xl.recipe.height)

    init = io.BytesIO()
    Image.new("RGB", (300, 200), (250, 120, 0)).save(init, format="PNG")
    remix = await studio.generations.imagine(
        ALICE, "an orange sea --ar 3:2 --strength 0.5", init_image=init.getvalue()
    )
    assert remix.recipe.init_image is not None and remix.recipe.strength == 0.5
    done = await studio.results.follow(remix.id)
    image = Image.open(io.BytesIO(studio.artifacts.get(done.images[0].artifact)))
    assert image.size == (96, 64)
    assert "Denoising strength: 0.5" in image.text["parameters"]


async def test_cancel_a_running_job(studio: Studio) -> None:
    # 512x512: far too long to end before the cancel arrives.
    generation = await studio.generations.imagine(ALICE, "a long one --steps 150 --size 512x512")
    started = asyncio.Event()

    async def on_progress(event: jobs.ProgressEvent) -> None:
        if event.type == "step":
            started.set()

    follow = asyncio.create_task(studio.results.follow(generation.id, on_progress))
    await asyncio.wait_for(started.wait(), 60)
    await studio.generations.cancel(ALICE, generation.id)
    with pytest.raises(GenerationCancelled):
        await asyncio.wait_for(follow, 30)
    record = await studio.store.get_generation(generation.id)
    assert record.status == "cancelled"
    assert await studio.store.images_of(generation.id) == []


async def test_queue_bytes_are_msgpack_not_pickle_and_duplicates_are_noops(idle: Deployment) -> None:
    async with open_studio(idle.settings()) as studio:
        generation = await studio.generations.imagine(ALICE, "a cat --seed 3")
        raw_redis = aioredis.from_url(TEST_REDIS_URL)
        try:
            raw = await raw_redis.get(jobs.ARQ_JOB_PREFIX + generation.id)
        finally:
            await raw_redis.aclose()
        assert raw is not None
        assert raw[:1] != b"\x80"  # every pickle protocol >= 2 starts with PROTO 0x80
        with pytest.raises(Exception):  # noqa: B017 - any failure proves it is not a pickle
            pickle.loads(raw)
        decoded = jobs.deserialize(raw)
        assert decoded["f"] == jobs.GENERATE
        assert jobs.GenerateJob.model_validate(decoded["a"][0]).generation_id == generation.id
        # The generation id is the job id: enqueueing it again is a no-op.
        again = await studio.queue.enqueue(jobs.GENERATE, generation.id, decoded["a"][0])
        assert again is False
        assert await studio.queue.position(jobs.INFERENCE, generation.id) == 0
        assert await studio.queue.redis.zcard(idle.settings().queue_name(jobs.INFERENCE)) == 1


async def test_a_result_that_arrived_while_nobody_waited_is_collected_once(studio: Studio) -> None:
    generation = await studio.generations.imagine(ALICE, "a quiet forest --batch 3")
    for _ in range(300):
        if await studio.queue.result(generation.id) is not None:
            break
        await asyncio.sleep(0.05)
    finished = await studio.results.collect()
    assert generation.id in [f.generation.id for f in finished]
    assert len(await studio.store.images_of(generation.id)) == 3
    await studio.results.collect()
    assert len(await studio.store.images_of(generation.id)) == 3
    record = await studio.store.get_generation(generation.id)
    assert record.status == "done" and record.grid_artifact is not None


async def test_history_lists_generations(deployment: Deployment, studio: Studio) -> None:
    result = await asyncio.to_thread(deployment.cli, "history", "--all-users", "--limit", "50")
    assert result.returncode == 0, result.stderr
    assert "done" in result.stdout and "a lighthouse at dusk" in result.stdout


async def test_queue_unreachable_is_one_clear_line(idle: Deployment) -> None:
    settings = idle.settings().model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with pytest.raises(QueueUnavailable, match=r"Cannot reach Redis at redis://127\.0\.0\.1:1/0"):
        await JobQueue.connect(settings)


async def test_ctrl_c_while_waiting_cancels_the_job(idle: Deployment) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "imagine",
        "a patient cat",
        env=idle.env,
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert process.stderr is not None
    lines = []
    while not lines or not lines[-1].startswith("queued"):
        lines.append((await asyncio.wait_for(process.stderr.readline(), 30)).decode().strip())
    notes = [line for line in lines if line.startswith("note:")]  # one image: no grid, no post worker
    assert len(notes) == 1 and notes[0].startswith("note: no inference worker is running"), notes
    process.send_signal(signal.SIGINT)
    rest = (await asyncio.wait_for(process.stderr.read(), 30)).decode()
    assert await process.wait() == 130
    assert "cancelling generation" in rest and "Traceback" not in rest
    generation_id = lines[0].split()[1].rstrip(":")
    raw_redis = aioredis.from_url(TEST_REDIS_URL)
    try:
        assert await raw_redis.exists(jobs.cancel_key(idle.prefix, generation_id))
    finally:
        await raw_redis.aclose()
