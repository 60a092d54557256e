"""Training images to the frozen VAE's latents, encoded once per run (every family)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image


def encode_images(
    pipe: Any, images: list[Image.Image], resolution: int, generator: torch.Generator, device: str
) -> torch.Tensor:
    """All images to the latents the denoiser sees: shifted (Flux, SD3) and scaled by the VAE's config."""
    vae = pipe.vae
    shift = vae.config.shift_factor or 0.0
    latents = []
    with torch.no_grad():
        for image in images:
            rgb = image.convert("RGB")
            if rgb.size != (resolution, resolution):
                rgb = rgb.resize((resolution, resolution), Image.Resampling.LANCZOS)
            array = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
            pixels = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device, vae.dtype)
            sample = vae.encode(pixels).latent_dist.sample(generator)
            latents.append((sample.float() - shift) * vae.config.scaling_factor)
    return torch.cat(latents)
