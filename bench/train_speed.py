"""LoRA training speed, and what switching LoRAs costs next to loading a whole pipeline.

In process, on the tiny SD1.5 model (no workers, no Redis):

* training: optimiser steps per second of ``gpu_worker.train.train_lora`` at 64 px, rank 4,
  batch 1, one fresh model per run (the loop only: encoding, samples and saving excluded);
* switching, on one serving pipeline with two trained adapters loaded:
  ``set_adapters([name], [weight])`` alternating between them; ``load_adapter`` of a new
  adapter from its bytes (temp file + ``load_lora_weights``, as a worker does), deleted again
  after each; and a full ``from_pretrained`` of the same model, all in the same run.

    .venv/bin/python -m bench.train_speed --runs 3
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/train_speed.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse
import statistics
import threading
import time
from dataclasses import asdict
from typing import Any

from bench._figures import STATS_HEADERS, load_line, machine_info, summarize, table, write_json
from bench._harness import TINY_DIR, ensure_tiny_models, entry, quiet_libraries
from studio.jobs import ModelRef, TrainingParams
from studio.recipe import Recipe

MODEL = "tiny-sd15"
CAPTIONS = ["a red sun", "a blue sea", "a green forest", "a gold moon"]


def dataset() -> list[Any]:
    from PIL import Image, ImageDraw

    images = []
    for n, colour in enumerate([(220, 30, 30), (30, 60, 220), (30, 180, 60), (230, 190, 40)]):
        image = Image.new("RGB", (64, 64), colour)
        ImageDraw.Draw(image).ellipse((8 + 10 * n, 12, 32 + 10 * n, 52), fill=(20, 20, 20))
        images.append(image)
    return images


def load(ref: ModelRef) -> tuple[Any, float]:
    """A fresh LoadedModel (its own cache: nothing shared) and the seconds its load took."""
    import torch

    from gpu_worker.pipelines import PipelineCache

    return PipelineCache("cpu", torch.float32).get(ref)


def train_runs(ref: ModelRef, runs: int, steps: int) -> tuple[list[float], list[bytes], list[float]]:
    """Steps/s per run, each run's weights (seed = run) and its last window's loss."""
    from gpu_worker.train import train_lora

    sample = Recipe(
        model=MODEL, family="sd15", prompt="a red sun", seed=1, steps=2, guidance=5.0, width=64, height=64
    )
    speeds: list[float] = []
    weights: list[bytes] = []
    losses: list[float] = []
    for run in range(runs):
        params = TrainingParams(
            steps=steps, rank=4, alpha=4, learning_rate=1e-2, resolution=64, seed=run, progress_every=steps
        )
        model, _ = load(ref)
        trained = train_lora(
            model,
            params,
            dataset(),
            CAPTIONS,
            sample,
            lambda step, total, loss: None,
            lambda step, image: None,
            threading.Event(),
            "cpu",
        )
        speeds.append(trained.steps_per_second)
        weights.append(trained.weights)
        losses.append(trained.losses[-1])
        print(f"  training run {run + 1}/{runs}: {trained.steps_per_second:.1f} steps/s", file=sys.stderr)
    return speeds, weights, losses


def switch_costs(ref: ModelRef, weights: list[bytes], switches: int, loads: int) -> dict[str, list[float]]:
    """Seconds per set_adapters switch, per load of a new adapter, per full pipeline load."""
    from gpu_worker.train import load_adapter

    model, _ = load(ref)
    pipe = model.text2img
    first, second = weights[0], weights[1 % len(weights)]
    load_adapter(pipe, first, "a")
    load_adapter(pipe, second, "b")
    switch: list[float] = []
    for n in range(switches):
        name, weight = ("a", 1.0) if n % 2 else ("b", 0.8)
        started = time.perf_counter()
        pipe.set_adapters([name], [weight])
        switch.append(time.perf_counter() - started)
    adapter_loads: list[float] = []
    for n in range(loads):
        started = time.perf_counter()
        load_adapter(pipe, first, f"new{n}")
        adapter_loads.append(time.perf_counter() - started)
        pipe.set_adapters(["a"], [1.0])  # deleting the active adapter warns
        pipe.delete_adapters(f"new{n}")
    load(ref)  # one untimed load: the first one also warms the file cache
    pipelines = [load(ref)[1] for _ in range(loads)]
    return {"set_adapters": switch, "load_adapter": adapter_loads, "from_pretrained": pipelines}


def report(
    speeds: list[float], losses: list[float], costs: dict[str, list[float]], steps: int
) -> dict[str, Any]:
    train = summarize(speeds)
    print(f"\nTraining: {MODEL}, 64x64, rank 4, batch 1, {steps} steps per run, {train.n} runs\n")
    print(
        table(
            ["", "median", "min", "max", "n"],
            [["steps/s", *(f"{v:.1f}" for v in (train.median, train.min, train.max)), str(train.n)]],
        )
    )
    print(f"last-window loss per run: {', '.join(f'{x:.3f}' for x in losses)}")
    labels = {
        "set_adapters": "set_adapters([name], [w]) (switch)",
        "load_adapter": "load_adapter (new LoRA from bytes)",
        "from_pretrained": "from_pretrained (whole pipeline)",
    }
    stats = {key: summarize(values) for key, values in costs.items()}
    print("\nSwitching LoRAs vs loading the model (milliseconds)\n")
    print(table(STATS_HEADERS, [stats[key].row(label, digits=2) for key, label in labels.items()]))
    full = stats["from_pretrained"].median
    switch_ratio = full / stats["set_adapters"].median
    load_ratio = full / stats["load_adapter"].median
    print(f"\nfrom_pretrained / set_adapters: {switch_ratio:.0f}x")
    print(f"from_pretrained / load_adapter: {load_ratio:.2f}x")
    return {
        "train_steps_per_second": speeds,
        "losses": losses,
        "costs_s": costs,
        "summary": {key: asdict(value) for key, value in stats.items()} | {"train": asdict(train)},
        "ratios": {"from_pretrained/set_adapters": switch_ratio, "from_pretrained/load_adapter": load_ratio},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="LoRA training steps/s and adapter switching cost (in process).")
    p.add_argument("--runs", type=int, default=3, help="training runs, and pipeline loads (default 3)")
    p.add_argument("--steps", type=int, default=30, help="optimiser steps per training run (default 30)")
    p.add_argument("--switches", type=int, default=40, help="set_adapters switches timed (default 40)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: torch's own)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the raw samples and summaries here")
    args = p.parse_args(argv)
    if args.runs < 1 or args.steps < 1 or args.switches < 2 or args.threads < 0:
        p.error("--runs and --steps must be at least 1, --switches at least 2, --threads 0 or more")
    ensure_tiny_models()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_libraries()
    print(machine_info() + f" | torch threads: {torch.get_num_threads()}")
    ref = ModelRef(id=MODEL, family="sd15", source=str(TINY_DIR / MODEL))
    train_runs(ref, 1, 3)  # warm-up, untimed: the first run pays one-off start-up costs
    speeds, weights, losses = train_runs(ref, args.runs, args.steps)
    costs = switch_costs(ref, weights, args.switches, max(args.runs, 5))
    data = report(speeds, losses, costs, args.steps)
    data["median_steps_per_second"] = statistics.median(speeds)
    write_json(args.json, data)
    print(load_line())
    return 0


if __name__ == "__main__":
    entry(main)
