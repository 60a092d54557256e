"""What a live preview costs per progress edit: latents -> RGB (the family's linear factors) and
the WebP encode, per family at full size, with the preview's bytes; against one full-size VAE
decode (random SD 1.5 weights: the work a preview by the VAE would be). In process, on the CPU.

    .venv/bin/python -m bench.preview_cost --runs 50
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/preview_cost.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from bench._figures import (
    STATS_HEADERS,
    check_runs,
    load_line,
    machine_info,
    parser,
    summarize,
    table,
    write_json,
)
from bench._harness import entry
from gpu_worker.preview import encode_preview, latents_to_rgb

# family -> (width, height, latent shape as the pipeline's step callback sees it)
CASES: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "sd15": (512, 512, (1, 4, 64, 64)),
    "sdxl": (1024, 1024, (1, 4, 128, 128)),
    "sd3": (1024, 1024, (1, 16, 128, 128)),
    "flux": (1024, 1024, (1, 4096, 64)),  # packed 2x2 patches
}


def latents(shape: tuple[int, ...], smooth: bool) -> torch.Tensor:
    """Noise (an early step: the worst case for the encoder) or a smooth field (a late step)."""
    if not smooth:
        return torch.randn(shape)
    coarse = torch.randn(1, shape[-1] if len(shape) == 3 else shape[1], 8, 8)
    if len(shape) == 3:  # Flux: a smooth 16-channel field, packed
        grid = F.interpolate(torch.randn(1, 16, 8, 8), size=(128, 128), mode="bilinear")[0]
        return grid.view(16, 64, 2, 64, 2).permute(1, 3, 0, 2, 4).reshape(1, 4096, 64)
    return F.interpolate(coarse, size=shape[2:], mode="bilinear")


def timed(runs: int, call: Callable[[], object]) -> list[float]:
    for _ in range(3):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    p = parser(__doc__.splitlines()[0], default_runs=50)
    p.add_argument("--vae-runs", type=int, default=3, help="full-size VAE decodes to time (0: skip)")
    args = p.parse_args()
    check_runs(p, args.runs, 5)
    print(machine_info())
    samples: dict[str, list[float]] = {}
    sizes: dict[str, dict[str, int]] = {}
    for family, (width, height, shape) in CASES.items():
        noisy, smooth = latents(shape, False), latents(shape, True)
        samples[f"{family}: latents -> RGB"] = timed(
            args.runs, partial(latents_to_rgb, family, noisy, width, height)
        )
        picture = latents_to_rgb(family, noisy, width, height)
        samples[f"{family}: WebP encode"] = timed(args.runs, partial(encode_preview, picture, width, height))
        sizes[family] = {
            "early step (noise)": len(encode_preview(picture, width, height)),
            "late step (smooth)": len(
                encode_preview(latents_to_rgb(family, smooth, width, height), width, height)
            ),
        }
    if args.vae_runs:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
        ).eval()
        z = torch.randn(1, 4, 64, 64)

        def decode() -> None:
            with torch.inference_mode():
                vae.decode(z)

        samples["sd15: full VAE decode, 512x512 (for scale)"] = timed(args.vae_runs, decode)
    stats = {label: summarize(values) for label, values in samples.items()}
    print(table(STATS_HEADERS, [s.row(label, scale=1e3, digits=2) for label, s in stats.items()]))
    print("(milliseconds per preview, CPU)")
    print(
        table(
            ["family", "early step (noise)", "late step (smooth)"],
            [
                [family, f"{b['early step (noise)']:,} B", f"{b['late step (smooth)']:,} B"]
                for family, b in sizes.items()
            ],
        )
    )
    print(load_line())
    write_json(args.json, {"samples": samples, "bytes": sizes})
    return 0


if __name__ == "__main__":
    entry(main)
