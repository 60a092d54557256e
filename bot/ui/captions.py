"""Captions more than one feature writes under an image."""

from __future__ import annotations


def upscale_caption(method: str | None, factor: int, width: int | None, height: int | None) -> str:
    how = "resampling and sharpening (no upscale model is configured)" if method == "resampling" else method
    return f"⬆️ Upscaled {factor}× to {width}×{height} · {how}"
