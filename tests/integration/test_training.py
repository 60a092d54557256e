"""LoRA training on the tiny models, in process: the loss falls, runs repeat, both exports reload exactly."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from peft.utils import get_peft_model_state_dict
from PIL import Image, ImageDraw
from safetensors.torch import load, save

from gpu_worker.generate import Cancelled, run
from gpu_worker.kohya import read_metadata, stable_bytes, to_kohya
from gpu_worker.pipelines import LoadedModel, PipelineCache
from gpu_worker.train import (
    WEIGHT_NAME,
    Trained,
    load_adapter,
    text_encoder_lora_supported,
    train_lora,
)
from studio.jobs import ModelRef, TrainingParams
from studio.recipe import Recipe

CAPTIONS = ["a red sun", "a blue sea", "a green forest", "a gold moon"]
COLOURS = [(220, 30, 30), (30, 60, 220), (30, 180, 60), (230, 190, 40)]


def dataset() -> list[Image.Image]:
    """Four distinct 64 px images: a solid colour each, with a dark shape in a different place."""
    images = []
    for n, colour in enumerate(COLOURS):
        image = Image.new("RGB", (64, 64), colour)
        draw = ImageDraw.Draw(image)
        box = (8 + 10 * n, 12, 32 + 10 * n, 52)
        (draw.ellipse if n % 2 else draw.rectangle)(box, fill=(20, 20, 20))
        images.append(image)
    return images


def ref(tiny_models: dict[str, Path], family: str = "sd15") -> ModelRef:
    name = f"tiny-{family}"
    return ModelRef(id=name, family=family, source=str(tiny_models[name]))


def fresh(model_ref: ModelRef) -> LoadedModel:
    """A model of its own, as the training job gets (and as a fresh inference process loads it)."""
    model, _ = PipelineCache("cpu", torch.float32).get(model_ref)
    return model


def params(**changes: Any) -> TrainingParams:
    base = TrainingParams(
        steps=40, rank=4, alpha=8, learning_rate=1e-2, resolution=64, seed=7, progress_every=10
    )
    return base.model_copy(update=changes)


def recipe(family: str = "sd15", **changes: Any) -> Recipe:
    base = Recipe(
        model=f"tiny-{family}",
        family=family,
        prompt="a red sun",
        seed=11,
        steps=3,
        guidance=5.0,
        width=64,
        height=64,
        batch=2,
    )
    return base.model_copy(update=changes)


def pixels(images: list[Image.Image]) -> list[bytes]:
    return [np.asarray(image).tobytes() for image in images]


def max_diff(a: list[Image.Image], b: list[Image.Image]) -> int:
    pairs = zip(a, b, strict=True)
    return max(int(np.abs(np.asarray(x, dtype=int) - np.asarray(y, dtype=int)).max()) for x, y in pairs)


def quiet(step: int, total: int) -> None:
    return None


@dataclass
class Run:
    trained: Trained
    progress: list[tuple[int, int, float]] = field(default_factory=list)
    samples: list[tuple[int, Image.Image]] = field(default_factory=list)


def train(
    model_ref: ModelRef, how: TrainingParams, sample: Recipe, cancel: threading.Event | None = None
) -> Run:
    progress: list[tuple[int, int, float]] = []
    samples: list[tuple[int, Image.Image]] = []
    trained = train_lora(
        fresh(model_ref),
        how,
        dataset(),
        CAPTIONS,
        sample,
        lambda step, total, loss: progress.append((step, total, loss)),
        lambda step, image: samples.append((step, image)),
        cancel or threading.Event(),
        "cpu",
    )
    return Run(trained, progress, samples)


@pytest.fixture(scope="module")
def sd15(tiny_models: dict[str, Path]) -> Run:
    """40 steps on four images, a sample every 20 steps."""
    return train(ref(tiny_models), params(sample_every=20), recipe())


def test_the_loss_falls_and_progress_is_reported(sd15: Run) -> None:
    losses = sd15.trained.losses
    assert [(step, total) for step, total, _ in sd15.progress] == [(10, 40), (20, 40), (30, 40), (40, 40)]
    assert losses == [loss for _, _, loss in sd15.progress]
    assert losses[-1] < 0.8 * losses[0], losses
    assert sd15.trained.seconds > 0 and sd15.trained.steps_per_second > 0
    # One sample at step 20 (the last step has the final comparison instead): the first seed, LoRA on.
    assert [step for step, _ in sd15.samples] == [20]
    assert sd15.samples[0][1].size == (64, 64)


def test_the_adapter_reloads_bit_identically_in_a_fresh_pipeline(
    sd15: Run, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    trained = sd15.trained
    assert len(trained.lora_images) == len(trained.base_images) == 2
    assert pixels(trained.lora_images) != pixels(trained.base_images)  # the adapter does something
    model = fresh(ref(tiny_models))
    never = threading.Event()
    # With nothing loaded, the base images are the plain model's.
    assert pixels(run(model, recipe(), None, quiet, never).images) == pixels(trained.base_images)
    (tmp_path / WEIGHT_NAME).write_bytes(trained.weights)
    model.text2img.load_lora_weights(str(tmp_path), weight_name=WEIGHT_NAME, adapter_name="mine")
    assert pixels(run(model, recipe(), None, quiet, never).images) == pixels(trained.lora_images)
    model.text2img.set_adapters(["mine"], [0.0])
    assert pixels(run(model, recipe(), None, quiet, never).images) == pixels(trained.base_images)
    model.text2img.disable_lora()
    assert pixels(run(model, recipe(), None, quiet, never).images) == pixels(trained.base_images)


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute:UserWarning")
def test_switching_between_loaded_adapters_keeps_each_exact(sd15: Run, tiny_models: dict[str, Path]) -> None:
    """How a warm inference worker serves several LoRAs: load them all, set_adapters per job."""
    trained = sd15.trained
    tensors = load(trained.weights)  # a second adapter: the same one with its B matrices negated
    flipped = {key: -value if ".lora_B." in key else value for key, value in tensors.items()}
    other = stable_bytes(save(flipped, metadata=read_metadata(trained.weights)))
    model = fresh(ref(tiny_models))
    pipe, never = model.text2img, threading.Event()
    load_adapter(pipe, trained.weights, "mine")
    load_adapter(pipe, other, "other")
    pipe.set_adapters(["mine"], [1.0])
    assert pixels(run(model, recipe(), None, quiet, never).images) == pixels(trained.lora_images)
    pipe.set_adapters(["other"], [1.0])
    assert pixels(run(model, recipe(), None, quiet, never).images) != pixels(trained.lora_images)
    pipe.set_adapters(["mine"], [1.0])
    assert pixels(run(model, recipe(), None, quiet, never).images) == pixels(trained.lora_images)


def test_the_kohya_export_loads_through_diffusers_and_matches(
    sd15: Run, tiny_models: dict[str, Path]
) -> None:
    kohya = load(sd15.trained.kohya)
    weights = load(sd15.trained.weights)
    modules = {key.split(".")[0] for key in kohya}
    assert all(name.startswith("lora_unet_") for name in modules)
    assert len(kohya) == 3 * len(modules) and len(weights) == 2 * len(modules)
    assert {float(kohya[f"{name}.alpha"]) for name in modules} == {8.0}  # alpha, not rank: scale 2
    assert read_metadata(sd15.trained.kohya)["ss_network_dim"] == "4"
    model = fresh(ref(tiny_models))
    load_adapter(model.text2img, sd15.trained.kohya, "kohya", weight_name="atelier_kohya.safetensors")
    # Every module came back (a name the kohya loader does not know would be dropped or refused).
    loaded = get_peft_model_state_dict(model.text2img.unet, adapter_name="kohya")
    assert len(loaded) == len(weights)
    images = run(model, recipe(), None, quiet, threading.Event()).images
    assert max_diff(images, sd15.trained.lora_images) == 0


def test_the_same_seed_gives_the_same_weights(tiny_models: dict[str, Path]) -> None:
    # Batches of 2, two micro-batches per step: the accumulation path, short.
    how = params(steps=3, batch_size=2, gradient_accumulation=2, progress_every=2)
    sample = recipe(batch=1, steps=2)
    first = train(ref(tiny_models), how, sample).trained
    again = train(ref(tiny_models), how, sample).trained
    other = train(ref(tiny_models), how.model_copy(update={"seed": 8}), sample).trained
    assert first.weights == again.weights and first.kohya == again.kohya
    assert first.losses == again.losses and len(first.losses) == 2
    assert pixels(first.lora_images) == pixels(again.lora_images)
    assert other.weights != first.weights


def test_cancel_stops_training(tiny_models: dict[str, Path]) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def on_progress(step: int, total: int, loss: float) -> None:
        seen.append(step)
        cancel.set()

    with pytest.raises(Cancelled):
        train_lora(
            fresh(ref(tiny_models)),
            params(steps=50, progress_every=1),
            dataset(),
            CAPTIONS,
            recipe(),
            on_progress,
            lambda step, image: None,
            cancel,
            "cpu",
        )
    assert seen == [1]


def test_sdxl_trains_and_reloads(tiny_models: dict[str, Path]) -> None:
    sample = recipe("sdxl", batch=1)
    result = train(ref(tiny_models, "sdxl"), params(steps=4, progress_every=2), sample)
    trained = result.trained
    assert len(trained.losses) == 2 and all(np.isfinite(trained.losses))
    assert pixels(trained.lora_images) != pixels(trained.base_images)
    model = fresh(ref(tiny_models, "sdxl"))
    load_adapter(model.text2img, trained.weights, "mine")
    assert pixels(run(model, sample, None, quiet, threading.Event()).images) == pixels(trained.lora_images)


def test_text_encoder_lora_on_both_sdxl_encoders(tiny_models: dict[str, Path]) -> None:
    # pyproject pins transformers below 5.24, whose peft integration needs an unreleased peft.
    assert text_encoder_lora_supported()
    sample = recipe("sdxl", batch=1)
    trained = train(ref(tiny_models, "sdxl"), params(steps=3, train_text_encoder=True), sample).trained
    weights = load(trained.weights)
    for prefix in ("unet.", "text_encoder.text_model.", "text_encoder_2.text_model."):
        assert any(key.startswith(prefix) for key in weights), prefix
    kohya = load(trained.kohya)
    assert any(key.startswith("lora_te1_text_model_") for key in kohya)
    assert any(key.startswith("lora_te2_text_model_") for key in kohya)
    for data, name in ((trained.weights, WEIGHT_NAME), (trained.kohya, "kohya.safetensors")):
        model = fresh(ref(tiny_models, "sdxl"))
        load_adapter(model.text2img, data, "mine", weight_name=name)
        images = run(model, sample, None, quiet, threading.Event()).images
        assert pixels(images) == pixels(trained.lora_images), name


def test_bf16_autocast_and_v_prediction(tiny_models: dict[str, Path]) -> None:
    model = fresh(ref(tiny_models))
    pipe = model.text2img
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type="v_prediction")
    trained = train_lora(
        model,
        params(steps=3, mixed_precision="bf16", progress_every=1),
        dataset(),
        CAPTIONS,
        recipe(batch=1, steps=2),
        lambda step, total, loss: None,
        lambda step, image: None,
        threading.Event(),
        "cpu",
    )
    assert len(trained.losses) == 3 and all(np.isfinite(trained.losses))
    assert {tensor.dtype for tensor in load(trained.weights).values()} == {torch.float32}


def test_to_kohya_refuses_what_is_not_a_peft_lora() -> None:
    with pytest.raises(ValueError, match="not a diffusers/peft LoRA"):
        to_kohya(save({"unet.conv_in.weight": torch.zeros(2)}))
    with pytest.raises(ValueError, match="not a safetensors file"):
        to_kohya(b"\x01")
