"""``--tile``: seamless tiling images, by circular padding in the denoiser's and the VAE's convolutions.

A convolution near an edge normally sees zeros beyond it; with circular padding it sees the
opposite edge instead, so the UNet denoises (and the VAE decodes) the picture as if it were laid
on a torus and its left edge continues its right one, its top its bottom. SD 1.5 and SDXL have
no positional embeddings in their UNets, so that is all it takes. Flux and SD3 are transformers
with positional embeddings: the recipe refuses ``--tile`` for them (studio.recipe).

The pipeline is cached and shared between jobs: ``seamless`` sets the padding for one job and
puts every layer back as it was, even when the job fails or is cancelled. One pipeline runs one
job at a time on a worker (its scheduler has state too), so no other job sees the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

COMPONENTS = ("unet", "vae", "controlnet")  # a ControlNet pipeline's too: its residuals join the UNet's


def convolutions(pipe: Any) -> list[nn.Conv2d]:
    """The padded 2-D convolutions of the pipeline's UNet, VAE and ControlNet (LoRA layers' included)."""
    found: list[nn.Conv2d] = []
    for name in COMPONENTS:
        component = getattr(pipe, name, None)
        if isinstance(component, nn.Module):
            found += [m for m in component.modules() if isinstance(m, nn.Conv2d) and any(_padding(m))]
    return found


@contextmanager
def seamless(pipe: Any, enabled: bool = True) -> Iterator[None]:
    """Within the block the pipeline's convolutions wrap around (when ``enabled``)."""
    if not enabled:
        yield
        return
    layers = convolutions(pipe)
    saved = [layer.padding_mode for layer in layers]
    try:
        for layer in layers:
            layer.padding_mode = "circular"
        yield
    finally:
        for layer, mode in zip(layers, saved, strict=True):
            layer.padding_mode = mode


def _padding(layer: nn.Conv2d) -> tuple[int, ...]:
    padding = layer.padding
    if isinstance(padding, str):  # "same" pads by the kernel; "valid" does not
        return (1,) if padding == "same" else (0,)
    return tuple(padding)
