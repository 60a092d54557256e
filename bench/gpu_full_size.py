"""Denoiser speed of full-size SDXL and Flux.1-dev on a GPU: random weights, bf16, 1024x1024.

For a GPU machine. No weights are downloaded: the SDXL base UNet and the Flux.1-dev transformer
are built from their published configurations (written out below) with random weights, straight
on the GPU in the chosen dtype. Text encoders and VAE are left out: the conditioning is random
tensors of the shapes the pipelines pass (SDXL: 77 CLIP tokens of 2048, pooled 1280 and six time
ids; Flux: 512 T5 tokens of 4096, pooled CLIP 768, embedded guidance). What is timed is one
denoiser forward: ``--warmup`` untimed, then ``--steps`` timed, each ended by
``torch.cuda.synchronize``. Random weights run at the speed of real ones (same shapes, same
kernels), so the figures are the step rates of the real models, minus the text encoders (once
per image) and the VAE decode (once per image).

What a step is: an SDXL pipeline with guidance runs the UNet on batch 2 per image (conditioned and
unconditioned), so its it/s is the ``batch 2`` row; Flux.1-dev is guidance-distilled, one forward
per step, so its it/s is the ``batch 1`` row (batch 2 is two images, or true CFG).

    python -m bench.gpu_full_size                       # both models, batches 1 and 2, bf16
    python -m bench.gpu_full_size --models flux --steps 30 --json /tmp/flux.json
    python -m bench.gpu_full_size --cpu-smoke           # the same code, scaled-down models, on CPU

Needs a CUDA GPU with about 30 GB free for Flux in bf16 (24 GB of weights), 8 GB for SDXL.
Without one it says so and exits 2; ``--cpu-smoke`` checks the script end to end on any machine
(and builds both full-size models on the meta device, which allocates nothing, to count their
parameters).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/gpu_full_size.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads; keep it that way
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

# stabilityai/stable-diffusion-xl-base-1.0, unet/config.json (2.57 B parameters).
SDXL_BASE_UNET: dict[str, Any] = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": (5, 10, 20),
    "block_out_channels": (320, 640, 1280),
    "center_input_sample": False,
    "cross_attention_dim": 2048,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,  # 6 time ids x 256 + pooled text 1280
    "sample_size": 128,
    "transformer_layers_per_block": (1, 2, 10),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "use_linear_projection": True,
}

# black-forest-labs/FLUX.1-dev, transformer/config.json (11.9 B parameters): 19 double-stream and
# 38 single-stream blocks, 24 heads of 128 (3072 hidden).
FLUX_DEV_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,  # 16 latent channels packed 2x2
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,  # T5-XXL
    "pooled_projection_dim": 768,  # CLIP-L pooled
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}

# --cpu-smoke: the same architectures, scaled down until a CPU runs them in seconds.
SMOKE_SDXL_UNET: dict[str, Any] = {
    **SDXL_BASE_UNET,
    "addition_embed_type_num_heads": 4,
    "addition_time_embed_dim": 8,
    "attention_head_dim": (2, 4, 8),
    "block_out_channels": (32, 64, 128),
    "cross_attention_dim": 64,
    "layers_per_block": 1,
    "projection_class_embeddings_input_dim": 6 * 8 + 32,
    "sample_size": 8,
    "transformer_layers_per_block": (1, 1, 2),
}
SMOKE_FLUX: dict[str, Any] = {
    **FLUX_DEV_TRANSFORMER,
    "num_layers": 2,
    "num_single_layers": 4,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,
    "pooled_projection_dim": 32,
    "axes_dims_rope": (4, 6, 6),
}
SDXL_TEXT_TOKENS = 77
FLUX_TEXT_TOKENS = 512  # Flux.1-dev's max_sequence_length
SMOKE_TEXT_TOKENS = 16


@dataclass(frozen=True)
class Model:
    name: str
    label: str
    config: dict[str, Any]
    build: Callable[[dict[str, Any]], Any]
    inputs: Callable[..., dict[str, Any]]  # (config, batch, size, text_tokens, device, dtype)
    text_tokens: int


@dataclass(frozen=True)
class Figure:
    model: str
    batch: int
    size: int
    dtype: str
    device: str
    params: int
    build_s: float
    step_s: list[float]
    peak_gib: float | None

    @property
    def median(self) -> float:
        return statistics.median(self.step_s)

    @property
    def p90(self) -> float:
        ordered = sorted(self.step_s)
        return ordered[max(1, -(-9 * len(ordered) // 10)) - 1]


def _unet(config: dict[str, Any]) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**config)


def _flux(config: dict[str, Any]) -> Any:
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(**config)


def sdxl_inputs(
    config: dict[str, Any], batch: int, size: int, text_tokens: int, device: str, dtype: Any
) -> dict[str, Any]:
    """What StableDiffusionXLPipeline passes its UNet for one step (1/8 latents, 4 channels)."""
    import torch

    latent = size // 8
    pooled = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
    options = {"device": device, "dtype": dtype}
    return {
        "sample": torch.randn(batch, config["in_channels"], latent, latent, **options),
        "timestep": torch.full((batch,), 500.0, **options),
        "encoder_hidden_states": torch.randn(batch, text_tokens, config["cross_attention_dim"], **options),
        "added_cond_kwargs": {
            "text_embeds": torch.randn(batch, pooled, **options),
            "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * batch, **options),
        },
        "return_dict": False,
    }


def flux_inputs(
    config: dict[str, Any], batch: int, size: int, text_tokens: int, device: str, dtype: Any
) -> dict[str, Any]:
    """What FluxPipeline passes its transformer for one step: 16-channel 1/8 latents packed 2x2."""
    import torch

    side = size // 16  # 1/8 latents, then 2x2 patches
    options = {"device": device, "dtype": dtype}
    image_ids = torch.zeros(side, side, 3, **options)
    image_ids[..., 1] = torch.arange(side, **options)[:, None]
    image_ids[..., 2] = torch.arange(side, **options)[None, :]
    return {
        "hidden_states": torch.randn(batch, side * side, config["in_channels"], **options),
        "encoder_hidden_states": torch.randn(batch, text_tokens, config["joint_attention_dim"], **options),
        "pooled_projections": torch.randn(batch, config["pooled_projection_dim"], **options),
        "timestep": torch.full((batch,), 0.5, **options),  # the pipeline passes sigma (t / 1000)
        "img_ids": image_ids.reshape(side * side, 3),
        "txt_ids": torch.zeros(text_tokens, 3, **options),
        "guidance": torch.full((batch,), 3.5, **options) if config["guidance_embeds"] else None,
        "return_dict": False,
    }


def models(smoke: bool) -> dict[str, Model]:
    return {
        "sdxl": Model(
            "sdxl",
            "SDXL base UNet",
            SMOKE_SDXL_UNET if smoke else SDXL_BASE_UNET,
            _unet,
            sdxl_inputs,
            SDXL_TEXT_TOKENS,
        ),
        "flux": Model(
            "flux",
            "Flux.1-dev transformer",
            SMOKE_FLUX if smoke else FLUX_DEV_TRANSFORMER,
            _flux,
            flux_inputs,
            SMOKE_TEXT_TOKENS if smoke else FLUX_TEXT_TOKENS,
        ),
    }


def build(model: Model, device: str, dtype: Any) -> tuple[Any, float]:
    """The model with random weights, created on ``device`` in ``dtype`` (no float32 copy first)."""
    import torch

    started = time.perf_counter()
    default = torch.get_default_dtype()
    torch.manual_seed(0)
    try:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            module = model.build(model.config)
    finally:
        torch.set_default_dtype(default)
    if any(p.dtype != dtype for p in module.parameters()):  # a layer that insisted on float32
        module = module.to(dtype=dtype)
    module = module.eval().requires_grad_(False)
    synchronize(device)
    return module, time.perf_counter() - started


def synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def measure(
    model: Model,
    module: Any,
    batch: int,
    size: int,
    warmup: int,
    steps: int,
    device: str,
    dtype: Any,
    build_s: float,
) -> Figure:
    import torch

    inputs = model.inputs(model.config, batch, size, model.text_tokens, device, dtype)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    samples: list[float] = []
    with torch.inference_mode():
        for n in range(warmup + steps):
            started = time.perf_counter()
            output = module(**inputs)[0]
            synchronize(device)
            if n >= warmup:
                samples.append(time.perf_counter() - started)
    if not torch.isfinite(output).all():  # random weights can overflow; the timing stands, say so
        print(f"  note: {model.name} batch {batch} gave non-finite values (random weights)", file=sys.stderr)
    return Figure(
        model=model.label,
        batch=batch,
        size=size,
        dtype=str(dtype).removeprefix("torch."),
        device=device,
        params=sum(p.numel() for p in module.parameters()),
        build_s=build_s,
        step_s=samples,
        peak_gib=torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
    )


def full_size_parameters() -> dict[str, int]:
    """Both full-size models built on the meta device (no memory): their parameter counts."""
    import torch

    counts = {}
    for name, model in models(smoke=False).items():
        with torch.device("meta"):
            module = model.build(model.config)
        counts[name] = sum(p.numel() for p in module.parameters())
    return counts


def print_table(figures: list[Figure]) -> None:
    headers = [
        "model",
        "params",
        "size",
        "batch",
        "dtype",
        "ms/step median",
        "p90",
        "it/s",
        "peak GiB",
        "build s",
    ]
    rows = [
        [
            f.model,
            f"{f.params / 1e9:.2f} B" if f.params >= 1e8 else f"{f.params / 1e6:.2f} M",
            f"{f.size}x{f.size}",
            str(f.batch),
            f.dtype,
            f"{f.median * 1000:.1f}",
            f"{f.p90 * 1000:.1f}",
            f"{1 / f.median:.2f}",
            "-" if f.peak_gib is None else f"{f.peak_gib:.1f}",
            f"{f.build_s:.1f}",
        ]
        for f in figures
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    for n, row in enumerate([headers, *rows]):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def machine(device: str) -> str:
    import diffusers
    import torch

    where = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {os.cpu_count()} cores"
    cuda = f" | CUDA {torch.version.cuda}" if device == "cuda" else ""
    return (
        f"{where} | Python {platform.python_version()} | torch {torch.__version__}{cuda} | "
        f"diffusers {diffusers.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Denoiser it/s of full-size random-weight SDXL and Flux.1-dev at 1024x1024 on a CUDA GPU."
    )
    p.add_argument("--models", default="sdxl,flux", help="which: sdxl, flux or both (default sdxl,flux)")
    p.add_argument("--batches", default="1,2", help="batch sizes, comma-separated (default 1,2)")
    p.add_argument(
        "--size", type=int, default=1024, help="image side in pixels, a multiple of 16 (default 1024)"
    )
    p.add_argument("--steps", type=int, default=20, help="timed steps per row (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument(
        "--dtype", choices=("bf16", "fp16"), default="bf16", help="weights and inputs (default bf16)"
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every step's time here")
    p.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="run the same code on CPU with scaled-down models at 64x64 "
        "(checks the script end to end, measures nothing)",
    )
    args = p.parse_args(argv)
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    try:
        batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        p.error("--batches takes whole numbers separated by commas, e.g. 1,2")
    if not names or any(name not in ("sdxl", "flux") for name in names):
        p.error("--models takes sdxl, flux or sdxl,flux")
    if args.steps < 1 or args.warmup < 0 or any(b < 1 for b in batches) or args.size < 16 or args.size % 16:
        p.error("--steps and each batch must be at least 1, --warmup 0 or more, --size a multiple of 16")

    import torch

    if args.cpu_smoke:
        device, size, steps, warmup = "cpu", 64, min(args.steps, 3), min(args.warmup, 1)
    elif not torch.cuda.is_available():
        print(
            "No CUDA device here: this script measures full-size SDXL and Flux on a GPU. Run it on a GPU "
            "machine, or pass --cpu-smoke to check it end to end with scaled-down models on this CPU.",
            file=sys.stderr,
        )
        return 2
    else:
        device, size, steps, warmup = "cuda", args.size, args.steps, args.warmup
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    print(
        machine(device)
        + (" | --cpu-smoke: scaled-down models, figures mean nothing" if args.cpu_smoke else "")
    )
    if args.cpu_smoke:
        counts = full_size_parameters()
        print(
            "full-size parameters (built on the meta device): "
            + ", ".join(f"{k} {v / 1e9:.3f} B" for k, v in counts.items())
        )
    figures: list[Figure] = []
    catalogue = models(args.cpu_smoke)
    for name in names:
        model = catalogue[name]
        print(f"building {model.label} ({args.dtype}, random weights) on {device} ...", file=sys.stderr)
        module, build_s = build(model, device, dtype)
        for batch in batches:
            figure = measure(model, module, batch, size, warmup, steps, device, dtype, build_s)
            figures.append(figure)
            print(f"  {model.label} batch {batch}: {figure.median * 1000:.1f} ms/step", file=sys.stderr)
        del module
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    print(f"\nDenoiser forward per step, {size}x{size}, {warmup} warm-up + {steps} timed steps\n")
    print_table(figures)
    print(
        "\nSDXL with guidance runs its UNet on batch 2 per step (its it/s is the batch 2 row); Flux.1-dev "
        "embeds guidance, one forward per step (batch 1 row)."
    )
    if args.json is not None:
        rows = [asdict(f) | {"median_s": f.median, "p90_s": f.p90} for f in figures]
        args.json.write_text(
            json.dumps({"machine": machine(device), "figures": rows}, indent=2), encoding="utf-8"
        )
        print(f"raw figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
