"""What each model family costs on its tiny model, against SD 1.5 in the same run; Flux LoRA switch vs load.

In process, no workers, no Redis. The four tiny models (``gpu_worker.tiny.make_tiny``, built
once into ``.cache/bench-tiny-models``) go through the code a worker runs:

* load: ``gpu_worker.pipelines.load_model`` of the model's folder (a fresh pipeline each time:
  cold as far as the worker's cache goes; the file system's cache is warmed by one untimed load);
* per step: ``gpu_worker.generate.run`` txt2img at the tiny model's own size (the demo
  catalogue's), with few and with many steps; the difference divided by the extra steps is
  what one denoising step costs, the rest (prompt encoding, VAE decode) is the fixed cost;
* Flux LoRAs: two random LoRA files written with peft on the tiny Flux transformer, then
  ``LoadedModel.apply_adapters`` switching between the two loaded ones (``set_adapters``)
  against the first ``apply_adapters`` of a file not loaded yet (``load_lora_weights``).

Families take turns within each repeat, so drift on a shared machine hits them alike.

    .venv/bin/python -m bench.model_families            # --repeats 5
    .venv/bin/python -m bench.model_families --quick    # a smoke run: 2 repeats, fewer switches
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/model_families.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse
import hashlib
import logging
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench._figures import STATS_HEADERS, load_line, machine_info, summarize, table, write_json
from bench._harness import DEMO_MODELS, REPO, entry, quiet_libraries
from studio.catalogue import ModelEntry
from studio.jobs import AdapterRef, ModelRef
from studio.recipe import Recipe
from studio.tomlfile import read_toml

MODELS_DIR = REPO / ".cache" / "bench-tiny-models"
FAMILIES = ("sd15", "sdxl", "flux", "sd3")  # sd15 first: the baseline of every ratio
BASELINE = "sd15"
PROMPT = "a lighthouse at dusk, soft light"
DENOISER_PARAMS: dict[str, int] = {}  # the UNet's or transformer's size, noted at warm-up


@dataclass(frozen=True)
class Subject:
    """One tiny model as a worker sees it: what to load and a recipe at its own size."""

    family: str
    ref: ModelRef
    size: int
    guidance: float
    sampler: str

    def recipe(self, steps: int, seed: int) -> Recipe:
        return Recipe(
            model=self.ref.id,
            family=self.family,
            prompt=PROMPT,
            seed=seed,
            steps=steps,
            guidance=self.guidance,
            width=self.size,
            height=self.size,
            sampler=self.sampler,
        )


def subjects(folders: dict[str, Path]) -> list[Subject]:
    """The demo catalogue's entries for the tiny models (size, guidance, sampler), at ``folders``."""
    demo = read_toml(DEMO_MODELS)["models"]
    found = []
    for family in FAMILIES:
        model_id = f"tiny-{family}"
        entry_ = ModelEntry(id=model_id, **{**demo[model_id], "source": str(folders[model_id])})
        found.append(
            Subject(
                family=family,
                ref=entry_.ref(),
                size=entry_.native_size,
                guidance=entry_.default_guidance,
                sampler=entry_.default_sampler,
            )
        )
    return found


def load(subject: Subject) -> tuple[Any, float]:
    """A fresh LoadedModel (nothing cached) and the seconds ``load_model`` took."""
    import torch

    from gpu_worker.pipelines import load_model

    started = time.perf_counter()
    model = load_model(subject.ref, "cpu", torch.float32)
    return model, time.perf_counter() - started


def _run(model: Any, subject: Subject, steps: int) -> Any:
    from gpu_worker.generate import run

    return run(model, subject.recipe(steps, seed=7), None, lambda step, total: None, threading.Event())


def generate(model: Any, subject: Subject, steps: int) -> float:
    """Pipeline seconds of one txt2img image (what the worker reports as pipeline time)."""
    return float(_run(model, subject, steps).seconds)


def generate_image(model: Any, subject: Subject, steps: int) -> Any:
    return _run(model, subject, steps).images[0]


def families_run(
    found: list[Subject], repeats: int, few: int, many: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """Per family: load seconds, few-step and many-step pipeline seconds, ``repeats`` each."""
    loads: dict[str, list[float]] = {s.family: [] for s in found}
    short: dict[str, list[float]] = {s.family: [] for s in found}
    long: dict[str, list[float]] = {s.family: [] for s in found}
    models = {}
    for subject in found:  # warm-up, untimed: file cache, first inference, samplers, lazy imports
        models[subject.family], _ = load(subject)
        generate(models[subject.family], subject, few)
        pipe = models[subject.family].text2img
        denoiser = getattr(pipe, "transformer", None) or pipe.unet
        DENOISER_PARAMS[subject.family] = sum(p.numel() for p in denoiser.parameters())
    for repeat in range(repeats):
        for subject in found:  # a fresh pipeline, timed and dropped: generation uses the warm one
            _, seconds = load(subject)
            loads[subject.family].append(seconds)
        for subject in found:
            model = models[subject.family]
            # Alternate the order, so neither length always runs on a warmer cache.
            lengths = (few, many) if repeat % 2 == 0 else (many, few)
            for steps in lengths:
                (short if steps == few else long)[subject.family].append(generate(model, subject, steps))
        print(f"  repeat {repeat + 1}/{repeats} done", file=sys.stderr)
    return loads, short, long


# Flux LoRAs


def write_flux_loras(flux_source: Path, out: Path, count: int = 2) -> list[Path]:
    """``count`` random LoRA files (rank 4, attention projections) for the tiny Flux transformer.

    peft on the transformer, as the Forge trains one; lora_B is random too (peft starts it at
    zero), so each LoRA really changes the output. Saved with FluxPipeline.save_lora_weights.
    """
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    files = []
    for n in range(count):
        torch.manual_seed(100 + n)
        transformer = FluxTransformer2DModel.from_pretrained(flux_source / "transformer")
        transformer.add_adapter(
            LoraConfig(
                r=4,
                lora_alpha=4,
                init_lora_weights="gaussian",
                target_modules=["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj"],
            )
        )
        with torch.no_grad():
            for name, parameter in transformer.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(std=0.02)
        name = f"bench-flux-lora-{n}.safetensors"
        FluxPipeline.save_lora_weights(
            out, transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name=name
        )
        files.append(out / name)
    return files


def flux_lora_run(flux: Subject, files: list[Path], switches: int, loads: int) -> dict[str, list[float]]:
    """Seconds per apply_adapters that switches between two loaded LoRAs, and per first load of one."""
    by_sha = {hashlib.sha256(file.read_bytes()).hexdigest(): file for file in files}
    first, second = (AdapterRef(name=f"lora{n}", sha=sha, weight=1.0) for n, sha in enumerate(by_sha))
    model, _ = load(flux)
    file_for, keep = by_sha.__getitem__, 8
    model.apply_adapters([first], file_for, keep)  # untimed: the first LoRA the pipeline sees
    model.apply_adapters([second], file_for, keep)
    switch: list[float] = []
    for n in range(switches):
        wanted = first if n % 2 == 0 else second
        started = time.perf_counter()
        model.apply_adapters(
            [wanted.model_copy(update={"weight": 0.8 if n % 4 < 2 else 1.0})], file_for, keep
        )
        switch.append(time.perf_counter() - started)
    first_loads: list[float] = []
    for n in range(loads):
        # A digest the model has not seen: apply_adapters loads its file (load_lora_weights).
        fresh = AdapterRef(name=f"new{n}", sha=f"{n:016x}-new", weight=1.0)
        by_sha[fresh.sha] = files[n % len(files)]
        started = time.perf_counter()
        model.apply_adapters([fresh], file_for, keep)
        first_loads.append(time.perf_counter() - started)
        model.apply_adapters([first, second], file_for, 2)  # untimed: evicts the fresh one again
    # Not a timing: proof that the files loaded into the transformer (same seed, LoRA on vs off).
    model.apply_adapters([first], file_for, keep)
    with_lora = generate_image(model, flux, 2)
    model.apply_adapters([], file_for, keep)
    changed = with_lora.tobytes() != generate_image(model, flux, 2).tobytes()
    return {"switch": switch, "load": first_loads, "changes_output": [float(changed)]}


# Report


def report(
    found: list[Subject],
    loads: dict[str, list[float]],
    short: dict[str, list[float]],
    long: dict[str, list[float]],
    lora: dict[str, list[float]],
    few: int,
    many: int,
) -> dict[str, Any]:
    extra = many - few
    per_step = {f: [(b - a) / extra for a, b in zip(short[f], long[f], strict=True)] for f in short}
    fixed = {f: [a - few * s for a, s in zip(short[f], per_step[f], strict=True)] for f in short}
    load_stats = {f: summarize(v) for f, v in loads.items()}
    step_stats = {f: summarize(v) for f, v in per_step.items()}
    fixed_stats = {f: summarize(v) for f, v in fixed.items()}
    sizes = {s.family: s.size for s in found}

    def ratio(stats: dict[str, Any], family: str) -> float:
        return float(stats[family].median / stats[BASELINE].median)

    print(
        f"\nModel load (load_model, a fresh pipeline each time), milliseconds, "
        f"{len(loads[BASELINE])} repeats\n"
    )
    print(
        table(
            [*STATS_HEADERS, f"x {BASELINE}"],
            [[*load_stats[f].row(f"tiny-{f}"), f"{ratio(load_stats, f):.2f}"] for f in loads],
        )
    )
    print(f"\ntxt2img, 1 image at the tiny model's size: {few} vs {many} steps, milliseconds (medians)\n")
    rows = []
    for f in short:
        rows.append(
            [
                f"tiny-{f} ({sizes[f]}x{sizes[f]})",
                f"{DENOISER_PARAMS[f] / 1e6:.2f} M",
                f"{statistics.median(short[f]) * 1000:.1f}",
                f"{statistics.median(long[f]) * 1000:.1f}",
                f"{step_stats[f].median * 1000:.2f}",
                f"{step_stats[f].min * 1000:.2f}-{step_stats[f].max * 1000:.2f}",
                f"{ratio(step_stats, f):.2f}",
                f"{fixed_stats[f].median * 1000:.1f}",
                f"{ratio(fixed_stats, f):.2f}",
            ]
        )
    print(
        table(
            [
                "",
                "denoiser params",
                f"{few} steps",
                f"{many} steps",
                "per step",
                "per step min-max",
                f"x {BASELINE}",
                "fixed (encode+decode)",
                f"x {BASELINE}",
            ],
            rows,
        )
    )
    switch, first_load = summarize(lora["switch"]), summarize(lora["load"])
    flux_load = load_stats["flux"]
    print("\nFlux LoRAs (rank 4, attention) through LoadedModel.apply_adapters, milliseconds\n")
    print(
        table(
            STATS_HEADERS,
            [
                switch.row("switch between two loaded LoRAs (set_adapters)", digits=2),
                first_load.row("first use of a new LoRA file (load_lora_weights)", digits=2),
                flux_load.row("the whole tiny Flux model (load_model)", digits=2),
            ],
        )
    )
    print(f"\nnew LoRA / switch: {first_load.median / switch.median:.0f}x")
    print(f"Flux model load / switch: {flux_load.median / switch.median:.0f}x")
    changed = bool(lora["changes_output"][0])
    print(f"a loaded LoRA changes the image (same seed, on vs off): {'yes' if changed else 'NO'}")
    return {
        "steps": {"few": few, "many": many},
        "flux_lora_changes_output": changed,
        "sizes": sizes,
        "denoiser_params": DENOISER_PARAMS,
        "load_s": loads,
        "pipeline_s": {"few": short, "many": long},
        "per_step_s": per_step,
        "fixed_s": fixed,
        "flux_lora_s": {"switch": lora["switch"], "load": lora["load"]},
        "summary": {
            "load": {f: asdict(s) for f, s in load_stats.items()},
            "per_step": {f: asdict(s) for f, s in step_stats.items()},
            "fixed": {f: asdict(s) for f, s in fixed_stats.items()},
            "flux_lora_switch": asdict(switch),
            "flux_lora_load": asdict(first_load),
        },
        "ratios_vs_sd15": {
            "load": {f: ratio(load_stats, f) for f in loads},
            "per_step": {f: ratio(step_stats, f) for f in loads},
            "fixed": {f: ratio(fixed_stats, f) for f in loads},
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Load time and per-step time of each tiny model family against SD 1.5, and "
        "Flux LoRA switch vs load (in process, CPU)."
    )
    p.add_argument("--repeats", type=int, default=5, help="loads and generations per family (default 5)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 repeats, 10 switches, 2 LoRA loads")
    p.add_argument("--few", type=int, default=4, help="steps of the short generation (default 4)")
    p.add_argument("--many", type=int, default=12, help="steps of the long generation (default 12)")
    p.add_argument("--switches", type=int, default=40, help="Flux LoRA switches timed (default 40)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: torch's own)")
    p.add_argument(
        "--models",
        type=Path,
        default=MODELS_DIR,
        help=f"where the tiny models are built (default {MODELS_DIR})",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the raw samples and summaries here")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.switches = 2, 10
    if args.repeats < 1 or args.switches < 2 or args.threads < 0 or not 1 <= args.few < args.many:
        p.error(
            "--repeats must be at least 1, --switches at least 2, --threads 0 or more, 1 <= --few < --many"
        )
    import torch

    from gpu_worker.tiny import make_tiny

    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_libraries()
    logging.getLogger("gpu_worker").setLevel(logging.WARNING)
    print(machine_info() + f" | torch threads: {torch.get_num_threads()}")
    print(load_line())
    started = time.perf_counter()
    found = subjects(make_tiny(args.models))
    loads, short, long = families_run(found, args.repeats, args.few, args.many)
    flux = next(s for s in found if s.family == "flux")
    with tempfile.TemporaryDirectory(prefix="bench-flux-loras-") as tmp:
        files = write_flux_loras(Path(flux.ref.source), Path(tmp))
        lora = flux_lora_run(flux, files, args.switches, 2 if args.quick else max(args.repeats, 5))
    data = report(found, loads, short, long, lora, args.few, args.many)
    write_json(args.json, data)
    if not data["flux_lora_changes_output"]:
        print("the Flux LoRA files did not change the image: their switch and load figures mean nothing")
    print(f"\nwall time {time.perf_counter() - started:.1f} s (after imports) | " + load_line())
    return 0 if data["flux_lora_changes_output"] else 1


if __name__ == "__main__":
    entry(main)
