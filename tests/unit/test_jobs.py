from __future__ import annotations

import pytest

from studio import jobs


def test_msgpack_round_trip_with_bytes() -> None:
    payload = jobs.GenerateJob(
        generation_id="g",
        recipe={"a": 1},
        model=jobs.ModelRef(id="m", family="sd15", source="/m"),
        init_image=b"\x89PNG",
    ).model_dump()
    data = jobs.serialize({"f": "generate", "a": (payload,), "k": {}})
    assert not data.startswith(b"\x80")  # pickle's protocol marker
    back = jobs.deserialize(data)
    assert jobs.GenerateJob.model_validate(back["a"][0]).init_image == b"\x89PNG"


def test_exceptions_travel_as_words_and_objects_are_refused() -> None:
    assert jobs.deserialize(jobs.serialize({"r": ValueError("boom")}))["r"] == {
        "error": "ValueError",
        "message": "boom",
    }
    with pytest.raises(TypeError, match="cannot put object on the queue"):
        jobs.serialize({"r": object()})


def test_channel_names_are_prefixed() -> None:
    assert jobs.progress_channel("p", "j") == "p:progress:j"
    assert jobs.cancel_key("p", "j") == "p:cancel:j"
    assert jobs.grid_job_id("g") == "grid:g"


def test_every_job_name_has_one_spec_on_a_known_queue() -> None:
    names = (
        jobs.GENERATE,
        jobs.COMPOSE_GRID,
        jobs.BOARD_SHEET,
        jobs.COLLAGE,
        jobs.TRAIN_LORA,
        jobs.UPSCALE,
        jobs.GRADE,
        jobs.EXPORT,
        jobs.CONTROL_MAP,
        jobs.ANNOTATE,
        jobs.DESCRIBE,
    )
    assert set(jobs.JOBS) == set(names)
    for name, spec in jobs.JOBS.items():
        assert spec.name == name
        assert spec.queue in jobs.QUEUES


def test_each_job_has_its_own_result_type() -> None:
    results = [spec.result for spec in jobs.JOBS.values()]
    assert len(set(results)) == len(results)
    assert jobs.GRADE_SPEC.result is jobs.GradeResult
    assert jobs.COMPOSE_GRID_SPEC.result is jobs.GridResult


def test_results_are_read_through_the_table_and_keep_the_wire_format() -> None:
    wire = jobs.deserialize(jobs.serialize(jobs.GradeResult(png=b"\x89PNG").model_dump()))
    assert wire == {"png": b"\x89PNG"}  # the same msgpack dict as before the types were split
    assert jobs.GRADE_SPEC.result_of(wire) == jobs.GradeResult(png=b"\x89PNG")
    with pytest.raises(ValueError):
        jobs.UPSCALE_SPEC.result_of(wire)  # an upscale's reply also says its size and method


@pytest.mark.parametrize("kind", jobs.QUEUES)
def test_workers_register_exactly_their_queues_jobs(kind: str) -> None:
    from gpu_worker.settings import worker_settings
    from studio.settings import Settings

    registered = {f.name for f in worker_settings(Settings(), kind).functions}
    assert registered == {spec.name for spec in jobs.JOBS.values() if spec.queue == kind}


def test_every_worker_task_is_bound_to_its_jobs_spec() -> None:
    from gpu_worker.tasks import TASKS

    assert sorted(task.job.name for task in TASKS) == sorted(jobs.JOBS)
    assert all(task.job is jobs.JOBS[task.job.name] for task in TASKS)


def test_a_worker_task_refuses_to_reply_with_another_jobs_result() -> None:
    import asyncio

    from gpu_worker.tasks import Task

    async def grid_instead(ctx: dict[str, object], job: jobs.GradeJob) -> jobs.GradeResult:
        return jobs.GridResult(png=job.image)  # type: ignore[return-value]

    payload = jobs.GradeJob(image=b"\x89PNG", grade={}).model_dump()
    with pytest.raises(TypeError, match="grade replied GridResult, not GradeResult"):
        asyncio.run(Task(jobs.GRADE_SPEC, grid_instead).run({}, payload))
