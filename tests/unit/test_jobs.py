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
