"""2x/4x upscaling: an ESRGAN-family model (spandrel), the diffusers x4 upscaler, or resampling.

Models run tile by tile (``tiled``), so memory on the device stays bounded at any image size;
the full result is assembled on the CPU. Whatever the model's own scale, the result is exactly
``factor`` times the input on each side: extra passes for a small-scale model, a LANCZOS resize
to finish when the model overshoots.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from studio.jobs import UpscaleJob, UpscalerRef

log = logging.getLogger(__name__)

# A tile is N x 3 x h x w float in 0..1 (CPU); the function returns it upscaled, N x 3 x hs x ws.
TileFn = Callable[[torch.Tensor], torch.Tensor]
# Called after each tile with (tiles done, tiles in all): progress, and a place to raise to cancel.
OnTile = Callable[[int, int], None]

RESAMPLING = "resampling"
OVERLAP = 32  # context around each tile: more than an ESRGAN-family model's reach, so no seams
MIN_TILE = 32
STRIP = 1024  # rows converted at a time from the float result
DIFFUSERS_TILE = 256  # the x4 diffusion upscaler decodes 16x the pixels: smaller tiles
DIFFUSERS_STEPS = 20
DIFFUSERS_NOISE_LEVEL = 20  # how much the model may reinvent detail (the pipeline's default)
DIFFUSERS_MULTIPLE = 8  # the UNet halves the tile three times


def upscale(
    image: Image.Image, job: UpscaleJob, device: str, cache: dict[str, Any], on_tile: OnTile | None = None
) -> tuple[Image.Image, str]:
    """The image upscaled exactly ``job.factor`` times on each side (RGB), and the method used:
    the model's id, or "resampling" without a model. ``cache`` keeps loaded models by source.

    Blocking (run it in a thread). ``on_tile`` hears about each model tile; an exception raised
    there (a cancel) stops the run between tiles.
    """
    rgb = image.convert("RGB")
    if job.model is None:
        return resample(rgb, job.factor), RESAMPLING
    tile = max(MIN_TILE, job.tile)
    if job.model.kind == "spandrel":
        scale, fn = _spandrel(job.model, device, cache)
    else:
        scale, fn = _diffusers(job.model, job.prompt, device, cache)
        tile = min(tile, DIFFUSERS_TILE)
    return upscale_with(rgb, job.factor, scale, tile, fn, on_tile), job.model.id


def resample(image: Image.Image, factor: int) -> Image.Image:
    """No model: LANCZOS, then a mild unsharp mask against the softness interpolation leaves."""
    size = (image.width * factor, image.height * factor)
    big = image.resize(size, Image.Resampling.LANCZOS)
    return big.filter(ImageFilter.UnsharpMask(radius=factor / 2, percent=50, threshold=2))


def passes_for(scale: int, factor: int) -> int:
    """How many model passes: enough to reach the factor, unless that overshoots it more than
    twice (a 3x model for 4x: one pass and a resize up beats a 9x image resized down)."""
    if scale < 2:
        raise ValueError(f"a {scale}x model does not upscale")
    passes = math.ceil(math.log(factor, scale) - 1e-9)
    if passes > 1 and scale**passes > 2 * factor:
        passes -= 1
    return max(1, passes)


def upscale_with(
    image: Image.Image, factor: int, scale: int, tile: int, fn: TileFn, on_tile: OnTile | None = None
) -> Image.Image:
    """Run a ``scale``x tile function as many passes as needed, then resize to exactly ``factor``x."""
    overlap = min(OVERLAP, tile // 4)
    sizes = [(image.height * scale**n, image.width * scale**n) for n in range(passes_for(scale, factor))]
    counts = [len(_spans(h, tile, overlap)) * len(_spans(w, tile, overlap)) for h, w in sizes]
    tensor = to_tensor(image)
    for n in range(len(counts)):
        report = None if on_tile is None else _offset(on_tile, sum(counts[:n]), sum(counts))
        tensor = tiled(tensor, tile, overlap, scale, fn, report)
    result = to_image(tensor)
    size = (image.width * factor, image.height * factor)
    return result if result.size == size else result.resize(size, Image.Resampling.LANCZOS)


def _offset(on_tile: OnTile, done: int, total: int) -> OnTile:
    """One pass's tile count as a share of all passes'."""
    return lambda tiles, _: on_tile(done + tiles, total)


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Core spans of near-equal size covering 0..length, each at most tile - 2 * overlap."""
    core = max(1, tile - 2 * overlap)
    count = math.ceil(length / core)
    edges = [round(i * length / count) for i in range(count + 1)]
    return list(itertools.pairwise(edges))


def tiled(
    image: torch.Tensor, tile: int, overlap: int, scale: int, fn: TileFn, on_tile: OnTile | None = None
) -> torch.Tensor:
    """``fn`` applied tile by tile to ``image`` (N x C x H x W, 0..1), assembled on the CPU.

    Each tile is at most ``tile`` input pixels a side: a core plus ``overlap`` pixels of context
    on each side (less at the image's edges). Only the core of each result is kept, so every
    output pixel comes from a tile where it had ``overlap`` pixels of context (or the image's
    own border): a model that sees no further than that gives the same result as untiled.
    """
    if not 0 <= overlap < tile / 2:
        raise ValueError(f"overlap {overlap} leaves no core in a {tile}-pixel tile")
    batch, channels, height, width = image.shape
    out = torch.empty((batch, channels, height * scale, width * scale), dtype=torch.float32)
    rows, columns = _spans(height, tile, overlap), _spans(width, tile, overlap)
    for done, ((top, bottom), (left, right)) in enumerate(itertools.product(rows, columns), start=1):
        y0, x0 = max(0, top - overlap), max(0, left - overlap)
        y1, x1 = min(height, bottom + overlap), min(width, right + overlap)
        result = fn(image[:, :, y0:y1, x0:x1])
        expected = (batch, channels, (y1 - y0) * scale, (x1 - x0) * scale)
        if tuple(result.shape) != expected:
            raise ValueError(f"tile function gave {tuple(result.shape)}, expected {expected}")
        core = result[
            :, :, (top - y0) * scale : (bottom - y0) * scale, (left - x0) * scale : (right - x0) * scale
        ]
        out[:, :, top * scale : bottom * scale, left * scale : right * scale] = core.float().cpu()
        if on_tile is not None:
            on_tile(done, len(rows) * len(columns))
    return out


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB image -> 1 x 3 x H x W float32 in 0..1."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / np.float32(255)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_image(tensor: torch.Tensor) -> Image.Image:
    """1 x 3 x H x W in 0..1 -> RGB image (rounded), converted in strips: an 8192-pixel result
    is 800 MB as float, and a whole-image clamp would copy it."""
    _, _, height, width = tensor.shape
    array = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, STRIP):
        strip = tensor[0, :, top : top + STRIP].clamp(0, 1).mul_(255).add_(0.5).to(torch.uint8)
        array[top : top + STRIP] = strip.permute(1, 2, 0).numpy()
    return Image.fromarray(array, "RGB")


def _spandrel(ref: UpscalerRef, device: str, cache: dict[str, Any]) -> tuple[int, TileFn]:
    """An ESRGAN-family model file (.safetensors, or .pth read by spandrel's restricted unpickler)."""
    descriptor = cache.get(ref.source)
    if descriptor is None:
        descriptor = _load_spandrel(ref, device)
        cache[ref.source] = descriptor
    half = device.startswith("cuda") and bool(descriptor.supports_half)
    dtype = torch.float16 if half else torch.float32

    def run(tile: torch.Tensor) -> torch.Tensor:
        return descriptor(tile.to(device=device, dtype=dtype)).float().cpu()  # type: ignore[no-any-return]

    return int(descriptor.scale), run


def _load_spandrel(ref: UpscalerRef, device: str) -> Any:
    from spandrel import ImageModelDescriptor, ModelLoader  # type: ignore[import-not-found,unused-ignore]

    try:
        descriptor = ModelLoader(device=device).load_from_file(ref.source)
    except Exception as exc:  # a missing, broken or unknown file raises anything
        raise _load_error(f"could not load upscaler {ref.id} from {ref.source}: {exc}") from exc
    if not isinstance(descriptor, ImageModelDescriptor) or descriptor.scale < 2:
        raise _load_error(f"upscaler {ref.id} ({ref.source}) is not an upscaling model")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise _load_error(f"upscaler {ref.id} is not an RGB model")
    if descriptor.scale != ref.scale:
        log.warning("upscaler %s is a %dx model (configured as %dx)", ref.id, descriptor.scale, ref.scale)
    if device.startswith("cuda") and descriptor.supports_half:
        descriptor.half()
    descriptor.eval()
    log.info(
        "loaded upscaler %s (%s, %dx) on %s", ref.id, descriptor.architecture.name, descriptor.scale, device
    )
    return descriptor


def _load_error(message: str) -> Exception:
    """The inference worker's ModelLoadError, imported only on failure: it lives beside diffusers."""
    from gpu_worker.pipelines import ModelLoadError

    return ModelLoadError(message)


def _diffusers(ref: UpscalerRef, prompt: str, device: str, cache: dict[str, Any]) -> tuple[int, TileFn]:
    """The diffusers x4 upscaler (StableDiffusionUpscalePipeline), one tile at a time.

    Diffusion looks at the whole tile, so the cropped overlap softens seams without making
    them provably invisible as it does for ESRGAN-family models. Each tile uses the same seed,
    so a run is repeatable. Tiles are padded to a multiple of 8 (edge pixels repeated) and
    cropped back.
    """
    pipe = cache.get(ref.source)
    if pipe is None:
        pipe = _load_diffusers(ref, device)
        cache[ref.source] = pipe

    def run(tile: torch.Tensor) -> torch.Tensor:
        height, width = tile.shape[-2:]
        pad_h, pad_w = -height % DIFFUSERS_MULTIPLE, -width % DIFFUSERS_MULTIPLE
        padded = torch.nn.functional.pad(tile, (0, pad_w, 0, pad_h), mode="replicate")
        result = pipe(
            prompt=prompt,
            image=padded.to(device=device, dtype=pipe.unet.dtype),
            num_inference_steps=DIFFUSERS_STEPS,
            noise_level=DIFFUSERS_NOISE_LEVEL,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="pt",
        ).images
        return result[:, :, : height * 4, : width * 4].float().cpu()

    return 4, run


def _load_diffusers(ref: UpscalerRef, device: str) -> Any:
    from diffusers import StableDiffusionUpscalePipeline

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    try:
        pipe = StableDiffusionUpscalePipeline.from_pretrained(ref.source, dtype=dtype)
    except Exception as exc:  # broken weights raise anything: report it as a load failure
        raise _load_error(f"could not load upscaler {ref.id} from {ref.source}: {exc}") from exc
    if device != "cpu":
        pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    log.info("loaded upscaler %s (diffusers x4) on %s", ref.id, device)
    return pipe
