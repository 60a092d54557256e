"""What ControlNet costs per step, against plain generation in the same run; and what the canny map costs.

In process, no workers, no Redis. The tiny SD 1.5 and SDXL models and their tiny canny ControlNets
(``gpu_worker.tiny.make_tiny``, built once into ``.cache/bench-tiny-models``) go through the code a
worker runs: ``gpu_worker.controlnet.prepare_control`` (the ControlNet pipeline, ``from_pipe`` of the
warm base, and its arguments) then ``gpu_worker.generate.run``, for two modes:

* plain: the base text-to-image pipeline;
* canny: the same recipe with a canny map at strength 1 over all the steps.

Each mode runs with few and with many steps; the difference over the extra steps is one denoising
step's cost, the rest (prompt encoding, VAE decode) the fixed cost. Modes take turns within each
repeat, so drift on a shared machine hits them alike. Also timed: making the canny map on the post
worker's code path (``gpu_worker.control_map.control_map``) from a 512 and a 1024 px photo-like image.

    .venv/bin/python -m bench.controlnet_cost              # --repeats 7 --size 128
    .venv/bin/python -m bench.controlnet_cost --quick      # a smoke run
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/controlnet_cost.py`
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
MODES = ("plain", "canny")
PROMPT = "a lighthouse at dusk, soft light"
LIMITS = (10**8, 10**9)  # pixels, bytes: no upload limits here


def _photo(side: int) -> bytes:
    """A picture with shapes and noise: edges everywhere, like a photo's."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(side)
    image = Image.fromarray(rng.integers(90, 160, (side, side, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = (int(v) for v in rng.integers(0, side, 2))
        r = int(rng.integers(side // 40, side // 6))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class Subject:
    def __init__(self, family: str, folders: dict[str, Path], size: int) -> None:
        import torch

        from gpu_worker.control_map import control_map
        from gpu_worker.pipelines import load_model
        from studio.controlnets import ControlNetEntry
        from studio.jobs import ModelRef

        self.family, self.size = family, size
        self.ref = ModelRef(
            id=f"tiny-{family}", family=family, source=str(folders[f"tiny-{family}"]), kind="folder"
        )
        self.entry = ControlNetEntry(family=family, mode="canny", source=str(folders[f"tiny-{family}-canny"]))
        self.model = load_model(self.ref, "cpu", torch.float32)
        self.map = control_map(_photo(size), "canny", size, size, *LIMITS)

    def recipe(self, mode: str, steps: int) -> Any:
        from studio.recipe import Control, Recipe

        control = Control(mode="canny", image="0" * 64, map="1" * 64) if mode == "canny" else None
        return Recipe(
            model=self.ref.id,
            family=self.family,
            prompt=PROMPT,
            seed=7,
            steps=steps,
            guidance=5.0,
            width=self.size,
            height=self.size,
            control=control,
        )

    def generate(self, mode: str, steps: int) -> tuple[float, float]:
        """(seconds to prepare the control, pipeline seconds) of one image."""
        from gpu_worker.controlnet import control_arguments, control_pipeline
        from gpu_worker.generate import decode_image, run

        recipe = self.recipe(mode, steps)
        started = time.perf_counter()
        pipe, extra = None, None
        if mode == "canny":
            pipe = control_pipeline(self.model, self.entry, "cpu")
            extra = control_arguments(recipe, decode_image(self.map, *LIMITS))
        prepared = time.perf_counter() - started
        result = run(
            self.model, recipe, None, lambda step, total: None, threading.Event(), None, None, extra, pipe
        )
        return prepared, float(result.seconds)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--few", type=int, default=2)
    p.add_argument("--many", type=int, default=12)
    p.add_argument("--size", type=int, default=128, help="image side in pixels (a multiple of 64)")
    p.add_argument("--quick", action="store_true", help="2 repeats, 2 and 6 steps")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if args.quick:
        args.repeats, args.few, args.many = 2, 2, 6
    quiet_libraries()
    from gpu_worker.control_map import control_map
    from gpu_worker.tiny import make_tiny

    folders = make_tiny(MODELS_DIR)
    print(machine_info(), file=sys.stderr)
    subjects = [Subject(family, folders, args.size) for family in FAMILIES]
    samples: dict[str, dict[str, dict[str, list[float]]]] = {
        s.family: {m: {"few": [], "many": [], "prepare": []} for m in MODES} for s in subjects
    }
    photos = {side: _photo(side) for side in (512, 1024)}
    maps: dict[str, list[float]] = {f"canny map {side} px": [] for side in photos}
    for subject in subjects:  # warm-up, untimed: first inference, lazy imports, the ControlNet loaded once
        for mode in MODES:
            subject.generate(mode, args.few)
    for repeat in range(args.repeats):
        for subject in subjects:
            order = MODES if repeat % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                for length in ("few", "many") if repeat % 2 == 0 else ("many", "few"):
                    prepared, seconds = subject.generate(mode, args.few if length == "few" else args.many)
                    samples[subject.family][mode][length].append(seconds)
                    samples[subject.family][mode]["prepare"].append(prepared)
        for side, photo in photos.items():
            started = time.perf_counter()
            control_map(photo, "canny", side, side, *LIMITS)
            maps[f"canny map {side} px"].append(time.perf_counter() - started)
        print(f"  repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)

    extra_steps = args.many - args.few
    print(f"\nControlNet cost, tiny models at {args.size}x{args.size}, CPU; {load_line()}")
    print(
        f"per step = (pipeline s at {args.many} steps - at {args.few}) / {extra_steps}, "
        f"medians of {args.repeats}\n"
    )
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
    print(table(["", "ms/step", "vs plain", "fixed ms", "vs plain", "prepare ms"], rows))
    print("\nthe canny map on the post worker (decode, crop, Canny, PNG):")
    print(table(STATS_HEADERS, [summarize(v).row(k) for k, v in maps.items()]))
    write_json(
        args.json,
        {"samples": samples, "maps": maps, "figures": figures, "args": vars(args) | {"json": None}},
    )
    return 0


if __name__ == "__main__":
    entry(main)
