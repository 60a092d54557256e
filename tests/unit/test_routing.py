"""The capacity rule and the model sizes workers advertise (studio.routing, gpu_worker.advertise)."""

from __future__ import annotations

from pathlib import Path

from gpu_worker.advertise import component_files, model_bytes
from studio.jobs import ModelRef
from studio.routing import (
    EVICT,
    ROOM,
    WARM,
    Advertisement,
    NoWorkerCanRun,
    about,
    cheaper_idle_worker,
    fits,
    job_cost,
    refusal,
)
from studio.safetensors_header import write_safetensors

GB = 10**9


def advert(
    worker_id: str, budget: int, needs: dict[str, int | None], warm=(), running=0, at=100.0
) -> Advertisement:  # type: ignore[no-untyped-def]
    return Advertisement(
        worker_id=worker_id,
        device="cuda",
        dtype="float16",
        budget_bytes=budget,
        total_bytes=budget,
        free_bytes=budget,
        warm=list(warm),
        needs=needs,
        running=running,
        slots=1,
        at=at,
    )


def test_a_model_fits_when_its_weights_are_within_the_budget() -> None:
    assert fits(16 * GB, 16 * GB)
    assert not fits(16 * GB + 1, 16 * GB)


def test_a_model_too_big_for_every_worker_is_refused_in_one_sentence() -> None:
    workers = [advert("a", 16 * GB, {"flux-dev": 24 * GB}), advert("b", 12 * GB, {"flux-dev": 24 * GB})]
    refused = refusal("flux-dev", workers)
    assert isinstance(refused, NoWorkerCanRun)
    assert str(refused).startswith(
        "No worker here can run `flux-dev` (it needs about 24 GB; the largest worker has 16 GB)."
    )
    assert refused.field == "model"


def test_one_worker_big_enough_is_enough() -> None:
    workers = [advert("a", 16 * GB, {"flux-dev": 24 * GB}), advert("b", 80 * GB, {"flux-dev": 24 * GB})]
    assert refusal("flux-dev", workers) is None


def test_no_workers_at_all_is_not_a_refusal_jobs_wait_as_before() -> None:
    assert refusal("flux-dev", []) is None


def test_workers_that_do_not_know_the_model_or_its_size_do_not_refuse_it() -> None:
    assert refusal("flux-dev", [advert("a", 1 * GB, {"sd15": GB})]) is None  # not in its catalogue
    assert refusal("flux-dev", [advert("a", 1 * GB, {"flux-dev": None})]) is None  # weights not on disk
    assert advert("a", 1 * GB, {"flux-dev": None}).can_hold("flux-dev")
    assert not advert("a", 1 * GB, {"sd15": GB}).can_hold("flux-dev")


def test_sizes_read_for_people() -> None:
    assert about(24 * GB) == "24 GB"
    assert about(int(1.5 * GB)) == "1.5 GB"
    assert about(4_300_000) == "4.3 MB"
    assert about(640_000_000) == "640 MB"


def test_a_job_costs_nothing_where_its_model_is_warm_and_most_where_it_evicts_one() -> None:
    assert job_cost("sd15", ["sd15"], 1) == WARM
    assert job_cost("sd15", [], 1) == ROOM
    assert job_cost("sd15", ["sdxl"], 2) == ROOM
    assert job_cost("sd15", ["sdxl"], 1) == EVICT


def test_a_job_is_left_only_to_another_fresh_idle_worker_that_runs_it_more_cheaply() -> None:
    workers = [
        advert("me", GB, {}, warm=()),
        advert("busy", GB, {}, warm=("sd15",), running=1),
        advert("stale", GB, {}, warm=("sd15",), at=0.0),
        advert("idle", GB, {}, warm=("sd15",)),
    ]
    assert cheaper_idle_worker("sd15", ROOM, workers, "me", now=101.0, max_age_s=6) == "idle"
    assert cheaper_idle_worker("sd15", ROOM, workers[:3], "me", now=101.0, max_age_s=6) is None
    assert cheaper_idle_worker("sdxl", ROOM, workers, "me", now=101.0, max_age_s=6) is None  # all would load
    # A worker that would evict a model leaves the job to an idle one with room to spare.
    assert (
        cheaper_idle_worker("sdxl", EVICT, workers, "me", now=101.0, max_age_s=6) is None
    )  # it would evict too
    spare = [advert("empty", GB, {}, warm=()), advert("me", GB, {}, warm=("sd15",))]
    assert cheaper_idle_worker("sdxl", EVICT, spare, "me", now=101.0, max_age_s=6) == "empty"
    assert cheaper_idle_worker("sd15", WARM, spare, "me", now=101.0, max_age_s=6) is None


def _weights(path: Path, tensors: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    item = {"F32": 4, "F16": 2, "I64": 8}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        write_safetensors(
            {
                name: (dtype, shape, bytes(item[dtype] * shape[0] * shape[1]))
                for name, (dtype, shape) in tensors.items()
            },
            {},
        )
    )


def test_a_folder_needs_its_components_weights_at_the_workers_dtype(tmp_path: Path) -> None:
    _weights(tmp_path / "unet" / "diffusion_pytorch_model.safetensors", {"w": ("F32", (100, 10))})
    _weights(tmp_path / "unet" / "diffusion_pytorch_model.fp16.safetensors", {"w": ("F16", (100, 10))})
    _weights(
        tmp_path / "text_encoder" / "model.safetensors", {"w": ("F32", (10, 10)), "ids": ("I64", (1, 10))}
    )
    (tmp_path / "scheduler").mkdir()
    ref = ModelRef(id="m", family="sd15", source=str(tmp_path), kind="folder")
    assert model_bytes(ref, 4) == 1000 * 4 + 100 * 4 + 10 * 8  # integers keep their width
    assert model_bytes(ref, 2) == 1000 * 2 + 100 * 2 + 10 * 8  # fp32 files loaded in fp16: half
    assert component_files(tmp_path / "unet", "fp16") == [
        tmp_path / "unet" / "diffusion_pytorch_model.fp16.safetensors"
    ]
    assert component_files(tmp_path / "unet", None) == [
        tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    ]
    offloaded = ref.model_copy(update={"cpu_offload": True})
    assert model_bytes(offloaded, 2) == 1000 * 2  # one component on the device at a time: the largest


def test_sharded_weights_count_every_shard_and_missing_weights_are_unknown(tmp_path: Path) -> None:
    for shard in (1, 2):
        _weights(
            tmp_path / "transformer" / f"diffusion_pytorch_model-0000{shard}-of-00002.safetensors",
            {"w": ("F32", (10, 10))},
        )
    ref = ModelRef(id="m", family="flux", source=str(tmp_path), kind="folder")
    assert model_bytes(ref, 2) == 2 * 100 * 2
    assert (
        model_bytes(ModelRef(id="m", family="sd15", source=str(tmp_path / "absent"), kind="folder"), 2)
        is None
    )
    single = tmp_path / "one.safetensors"
    _weights(single, {"w": ("F16", (10, 10))})
    assert model_bytes(ModelRef(id="m", family="sd15", source=str(single), kind="file"), 4) == 100 * 4
