"""The Forge's pure parts: names, triggers, per-family defaults, captions, and how runs read."""

from __future__ import annotations

import dataclasses

import pytest

from bot.ui import training as _render
from studio.catalogue import ModelEntry
from studio.entities import Lora, Requester
from studio.errors import DatasetRejected, InvalidRecipe
from studio.training import (
    TrainingImage,
    TrainingOptions,
    caption_warnings,
    captions_for,
    check_count,
    check_name,
    check_trigger,
    training_params,
)

SD15 = ModelEntry(id="sd15", family="sd15", source="/x", description="d")
SDXL = ModelEntry(id="sdxl", family="sdxl", source="/y", description="d")


def test_family_defaults_and_bounds() -> None:
    sd15 = training_params(TrainingOptions(), SD15, seed=1)
    assert (sd15.steps, sd15.rank, sd15.learning_rate, sd15.resolution) == (800, 16, 1e-4, 512)
    assert sd15.alpha == sd15.rank and sd15.sample_every == 200 and sd15.progress_every == 20
    assert training_params(TrainingOptions(), SDXL, seed=1).resolution == 1024
    chosen = training_params(TrainingOptions(steps=40, rank=4, learning_rate=1e-2, resolution=64), SD15, 2)
    assert (chosen.steps, chosen.rank, chosen.resolution, chosen.progress_every) == (40, 4, 64, 1)
    for options, field in [
        (TrainingOptions(steps=0), "steps"),
        (TrainingOptions(steps=100000), "steps"),
        (TrainingOptions(rank=0), "rank"),
        (TrainingOptions(learning_rate=float("nan")), "learning_rate"),
        (TrainingOptions(learning_rate=5.0), "learning_rate"),
        (TrainingOptions(resolution=500), "resolution"),
        (TrainingOptions(resolution=4096), "resolution"),
    ]:
        with pytest.raises(InvalidRecipe) as refused:
            training_params(options, SD15, seed=1)
        assert refused.value.field == field


@pytest.mark.parametrize("name", ["../evil", "a/b", "con", "LPT1", "x", "név", "a b", "-dash", "x" * 33])
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidRecipe):
        check_name(name)


def test_good_names_and_triggers_pass() -> None:
    assert check_name(" Mira_v2 ") == "Mira_v2"
    assert check_trigger("ohwx") == "ohwx"
    with pytest.raises(InvalidRecipe):
        check_trigger("two words")


def test_dataset_counts() -> None:
    check_count(3, 50)
    with pytest.raises(DatasetRejected, match="at least 3"):
        check_count(2, 50)
    with pytest.raises(DatasetRejected, match="at most 50 images; got 500"):
        check_count(500, 50)


def test_captions_start_with_the_trigger_and_warnings_explain_why() -> None:
    images = [TrainingImage(b"", "on a beach"), TrainingImage(b"", None), TrainingImage(b"", "ohwx at night")]
    assert captions_for("ohwx", images) == ["ohwx, on a beach", "ohwx", "ohwx at night"]
    assert caption_warnings("ohwx", images) == []
    same = [TrainingImage(b"", f"a woman with red hair, shot {i}") for i in range(3)]
    (warning,) = caption_warnings("ohwx", same)
    assert "`hair`, `red`, `shot`, `woman`" in warning
    assert any("everyday word" in w for w in caption_warnings("dog", []))


def run(**changes: object) -> Lora:
    base = Lora(
        id="r1", owner_id="discord:1", project_id=None, server="g", name="mira", version=1, trigger="ohwx",
        base_model="sd15", family="sd15", visibility="private", params_json="{}", image_count=5,
        status="running", attempts=1, step=50, loss=0.1234, error=None, weights=None, kohya=None,
        sample=None, comparison=None, size_bytes=None, losses=(0.9, 0.3), seconds=75.0, channel_id=None,
        message_id=None, delivered_at=None, created_at=0.0, started_at=None, finished_at=None,
        deleted_at=None,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_how_a_run_reads_in_its_thread() -> None:
    assert "Step 50/200" in _render.status(
        run(), 200, rate=10.0
    ) and "loss 0.1234 · ETA 15s" in _render.status(run(), 200, rate=10.0)
    retrying = _render.status(run(status="retrying", error="the training worker stopped"), 200, None)
    assert "⚠️ Retrying: the training worker stopped (stopped at step 50/200, attempt 1)" in retrying
    assert "Queued — 2 runs ahead" in _render.status(run(status="queued"), 200, None, position=2)
    assert "(attempt 2)" in _render.status(run(attempts=2), 200, None)
    assert _render.done(run(status="done")).startswith("✅ Trained `mira` v1 in 75s · loss 0.9000 → 0.3000")
    assert _render.ended(run(status="failed", error="out of memory")).endswith("failed: out of memory")


def test_visibility() -> None:
    shared = run(visibility="server")
    assert shared.visible_to(Requester("discord:2", "b", server="g"))
    assert not shared.visible_to(Requester("discord:2", "b", server="other"))
    assert not run().visible_to(Requester("discord:2", "b", server="g"))  # private
    assert run().visible_to(Requester("discord:1", "a"))
    assert run().visible_to(Requester("cli:operator", "op", operator=True))
