"""What style and character references (IP-Adapter) cost per step, against plain generation in the same run.

In process, no workers, no Redis. The tiny SD 1.5 and SDXL models and their tiny IP-Adapters
(``gpu_worker.tiny.make_tiny``, built once into ``.cache/bench-tiny-models``) go through the code
a worker runs: ``gpu_worker.ip_adapter.for_job`` (decode the references, attach or detach the
family's adapters on the warm pipeline) then ``gpu_worker.generate.run``, for three modes:

* plain: no references (the adapters detached: the UNet's own attention);
* style: one ``--sref`` image (two adapters loaded, the character one at scale 0);
* style+character: one ``--sref`` and one ``--cref`` image.

Each mode runs with few and with many steps; the difference over the extra steps is one
denoising step's cost, the rest (prompt and image encoding, VAE decode) the fixed cost. Modes
take turns within each repeat, so drift on a shared machine hits them alike. Also timed: the
first load of the adapters onto a model, and switching a warm model between plain and references.

    .venv/bin/python -m bench.ip_adapter_cost              # --repeats 7 --size 128
    .venv/bin/python -m bench.ip_adapter_cost --quick      # a smoke run
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/ip_adapter_cost.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse
import io
import threading
import time
from typing import Any

from bench._figures import STATS_HEADERS, load_line, machine_info, summarize, table, write_json
from bench._harness import REPO, entry, quiet_libraries

MODELS_DIR = REPO / ".cache" / "bench-tiny-models"
FAMILIES = ("sd15", "sdxl")
MODES = ("plain", "style", "style+character")
PROMPT = "a lighthouse at dusk, soft light"


def _png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (256, 256), colour).save(out, format="PNG")
    return out.getvalue()


class Subject:
    def __init__(self, family: str, folders: dict[str, Path], size: int) -> None:
        import torch

        from gpu_worker.pipelines import load_model
        from studio.ip_adapters import IPAdapterConfig
        from studio.jobs import ModelRef

        self.family, self.size = family, size
        self.ref = ModelRef(
            id=f"tiny-{family}", family=family, source=str(folders[f"tiny-{family}"]), kind="folder"
        )
        adapters = folders["tiny-ip-adapter"]
        self.config = IPAdapterConfig(
            family=family,
            image_encoder=str(adapters / "image_encoder"),
            style=str(adapters / family / "style.safetensors"),
            character=str(adapters / family / "character.safetensors"),
        )
        self.model = load_model(self.ref, "cpu", torch.float32)
        self.style, self.character = _png((200, 40, 40)), _png((40, 40, 200))

    def recipe(self, mode: str, steps: int) -> Any:
        from studio.recipe import Recipe, Reference

        references: list[Reference] = []
        if mode != "plain":
            references.append(Reference(kind="style", image="0" * 64, weight=0.6))
        if mode == "style+character":
            references.append(Reference(kind="character", image="1" * 64, weight=0.8))
        return Recipe(
            model=self.ref.id,
            family=self.family,
            prompt=PROMPT,
            seed=7,
            steps=steps,
            guidance=5.0,
            width=self.size,
            height=self.size,
            references=tuple(references),
        )

    def images(self, mode: str) -> list[bytes]:
        return {"plain": [], "style": [self.style], "style+character": [self.style, self.character]}[mode]

    def generate(self, mode: str, steps: int) -> tuple[float, float]:
        """(seconds to prepare the references, pipeline seconds) of one image."""
        from gpu_worker import ip_adapter
        from gpu_worker.generate import run

        recipe = self.recipe(mode, steps)
        started = time.perf_counter()
        extra = ip_adapter.for_job(self.model, self.config, recipe, self.images(mode), 10**8, 10**9)
        prepared = time.perf_counter() - started
        result = run(self.model, recipe, None, lambda step, total: None, threading.Event(), None, None, extra)
        return prepared, float(result.seconds)


def first_load(subject: Subject) -> float:
    """A fresh model's first job with references: the adapters' files read and attached."""
    import torch

    from gpu_worker import ip_adapter
    from gpu_worker.pipelines import load_model

    model = load_model(subject.ref, "cpu", torch.float32)
    recipe = subject.recipe("style+character", 2)
    started = time.perf_counter()
    ip_adapter.for_job(model, subject.config, recipe, subject.images("style+character"), 10**8, 10**9)
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--few", type=int, default=2)
    p.add_argument("--many", type=int, default=12)
    p.add_argument("--size", type=int, default=128, help="image side in pixels (a multiple of 64)")
    p.add_argument("--quick", action="store_true", help="2 repeats, 2 and 6 steps")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--torch-threads", type=int, default=0, help="torch threads (0: torch's own choice)")
    args = p.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    if args.quick:
        args.repeats, args.few, args.many = 2, 2, 6
    quiet_libraries()
    from gpu_worker.tiny import make_tiny

    folders = make_tiny(MODELS_DIR)
    print(machine_info(), file=sys.stderr)
    subjects = [Subject(family, folders, args.size) for family in FAMILIES]
    samples: dict[str, dict[str, dict[str, list[float]]]] = {
        s.family: {m: {"few": [], "many": [], "prepare": []} for m in MODES} for s in subjects
    }
    loads: dict[str, list[float]] = {s.family: [] for s in subjects}
    for subject in subjects:  # warm-up, untimed: first inference, lazy imports, adapters loaded once
        for mode in MODES:
            subject.generate(mode, args.few)
    for repeat in range(args.repeats):
        for subject in subjects:
            loads[subject.family].append(first_load(subject))
            order = MODES if repeat % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                for length in ("few", "many") if repeat % 2 == 0 else ("many", "few"):
                    prepared, seconds = subject.generate(mode, args.few if length == "few" else args.many)
                    samples[subject.family][mode][length].append(seconds)
                    samples[subject.family][mode]["prepare"].append(prepared)
        print(f"  repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)

    extra_steps = args.many - args.few
    threads = f"{args.torch_threads} torch thread(s)" if args.torch_threads else "torch's threads"
    print(f"\nIP-Adapter cost, tiny models at {args.size}x{args.size}, CPU, {threads}; {load_line()}")
    per = f"per step = (pipeline s at {args.many} steps - at {args.few}) / {extra_steps}"
    print(f"{per}, medians of {args.repeats}\n")
    rows = []
    figures: dict[str, Any] = {}
    for subject in subjects:
        fam = samples[subject.family]
        per_step = {
            mode: [(m - f) / extra_steps for f, m in zip(fam[mode]["few"], fam[mode]["many"], strict=True)]
            for mode in MODES
        }
        plain_step = summarize(per_step["plain"]).median
        plain_fixed = summarize(fam["plain"]["few"]).median - args.few * plain_step
        for mode in MODES:
            step = summarize(per_step[mode]).median
            fixed = summarize(fam[mode]["few"]).median - args.few * step
            prepare = summarize(fam[mode]["prepare"]).median
            rows.append(
                [
                    f"{subject.family} {mode}",
                    f"{step * 1000:.1f}",
                    f"{step / plain_step:.2f}x",
                    f"{fixed * 1000:.1f}",
                    f"{fixed / plain_fixed:.2f}x",
                    f"{prepare * 1000:.2f}",
                ]
            )
            figures[f"{subject.family} {mode}"] = {"step_s": step, "fixed_s": fixed, "prepare_s": prepare}
    print(
        table(
            ["", "ms/step", "vs plain", "fixed ms", "vs plain", "attach/detach ms"],
            rows,
        )
    )
    print("\nfirst load of both adapters onto a fresh model (files read, encoder loaded):")
    print(table(STATS_HEADERS, [summarize(loads[s.family]).row(s.family) for s in subjects]))
    write_json(
        args.json,
        {"samples": samples, "loads": loads, "figures": figures, "args": vars(args) | {"json": None}},
    )
    return 0


if __name__ == "__main__":
    entry(main)
