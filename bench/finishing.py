"""What finishing costs on the workers: grades, exports with a size limit, upscales, in process.

On a 1024x1024 photo-like image (noise over gradients, so compressors have work to do):

* grade: the identity grade (the baseline: decode-free copy), each preset, and a grade with
  every slider moved;
* export: to instagram-square (1080x1080) as JPEG, WebP and AVIF under a 200 KB limit (the
  quality search), and to print-a4 PNG (2480x3508) with no limit; baseline: one plain JPEG
  encode at quality 92 of the same crop;
* upscale 2x without a model (Lanczos + unsharp mask), and the same through the tiling
  machinery with an identity-sized nearest function (the cost of tiling itself).

    .venv/bin/python -m bench.finishing --runs 5
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/finishing.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import functools
import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from bench._figures import STATS_HEADERS, load_line, machine_info, summarize, table, write_json
from bench._harness import entry
from studio.finishing import GRADE_PRESETS, ExportSpec, Grade
from studio.jobs import UpscaleJob


def photo(side: int = 1024) -> Image.Image:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side] / side
    base = np.stack([x * 200 + 30, y * 180 + 40, (1 - x) * 160 + 50], axis=-1)
    noisy = base + rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def timed(work: Callable[[], Any], runs: int) -> list[float]:
    work()  # warm-up: imports and first-call costs are not what we measure
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return samples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Grade, export and upscale costs on a 1024x1024 image.")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the raw samples here")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    from gpu_worker.export import export_image
    from gpu_worker.grade import apply_grade
    from gpu_worker.upscale import resample, tiled, to_image, to_tensor

    print(machine_info())
    image = photo()
    png = io.BytesIO()
    image.save(png, format="PNG")
    source = png.getvalue()
    cases: dict[str, Callable[[], Any]] = {"grade: identity (baseline)": lambda: apply_grade(image, Grade())}
    for preset in GRADE_PRESETS:
        look = Grade(preset=preset)
        cases[f"grade: {preset}"] = functools.partial(apply_grade, image, look)
    every = Grade(exposure=0.5, contrast=20, saturation=15, temperature=10, tint=-5, grain=20, vignette=30,
                  sharpen=30, blur=1)  # fmt: skip
    cases["grade: every slider"] = lambda: apply_grade(image, every)
    crop = image.resize((1080, 1080))
    cases["encode: JPEG q92, no search (baseline)"] = lambda: crop.save(
        io.BytesIO(), format="JPEG", quality=92
    )
    for fmt in ("jpeg", "webp", "avif"):
        spec = ExportSpec(preset="instagram-square", format=fmt, max_kb=200)  # type: ignore[arg-type]
        cases[f"export: square {fmt}, <= 200 KB"] = functools.partial(
            export_image, source, spec, None, 1 << 26
        )
    a4 = ExportSpec(preset="print-a4", format="png")
    cases["export: print-a4 PNG"] = lambda: export_image(source, a4, None, 1 << 26)
    job = UpscaleJob(image=b"", factor=2)
    cases["upscale 2x: resampling"] = lambda: resample(image, job.factor)
    tensor = to_tensor(image)
    import torch.nn.functional as F

    def nearest(tile: Any) -> Any:
        return F.interpolate(tile, scale_factor=2, mode="nearest")

    cases["upscale 2x: tiling 512 (nearest)"] = lambda: to_image(tiled(tensor, 512, 32, 2, nearest))
    samples = {name: timed(work, args.runs) for name, work in cases.items()}
    stats = {name: summarize(values) for name, values in samples.items()}
    print(f"\n1024x1024 source, {args.runs} runs each (milliseconds)\n")
    print(table(STATS_HEADERS, [stats[name].row(name) for name in samples]))
    base = stats["encode: JPEG q92, no search (baseline)"].median
    for fmt in ("jpeg", "webp", "avif"):
        ratio = stats[f"export: square {fmt}, <= 200 KB"].median / base
        print(f"export square {fmt} <= 200 KB / one JPEG encode: {ratio:.1f}x")
    sizes = {}
    for fmt in ("jpeg", "webp", "avif"):
        spec = ExportSpec(preset="instagram-square", format=fmt, max_kb=200)  # type: ignore[arg-type]
        sizes[fmt] = len(export_image(source, spec, None, 1 << 26).data)
    print("sizes under the 200 KB limit: " + ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in sizes.items()))
    write_json(args.json, {"samples_s": samples, "sizes": sizes})
    print(load_line())
    return 0


if __name__ == "__main__":
    entry(main)
