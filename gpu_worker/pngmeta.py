"""PNG encoding that carries the recipe: A1111 `parameters` text and an `atelier` JSON chunk.

The worker adds what only it knows to the A1111 text: the hashes of the weights it used (Civitai
links the model and LoRAs by them) and the model's CLIP skip.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.model_hashes import civitai_hashes_text, lora_hashes_text
from studio.recipe import Recipe


@dataclass(frozen=True)
class WeightsUsed:
    """What the A1111 text says about the weights behind an image (hashes are A1111's short ones)."""

    model_hash: str | None = None
    lora_hashes: dict[str, str] = field(default_factory=dict)  # recipe LoRA name -> short hash
    vae_hash: str | None = None
    clip_skip: int = 0  # A1111's "Clip skip" (2: CLIP's last layer skipped); 0 and 1 say nothing

    def a1111_fields(self) -> tuple[tuple[str, str], ...]:
        fields: list[tuple[str, str]] = []
        if self.vae_hash:
            fields.append(("VAE hash", self.vae_hash))
        if self.clip_skip > 1:
            fields.append(("Clip skip", str(self.clip_skip)))
        if self.lora_hashes:
            fields.append(("Lora hashes", lora_hashes_text(self.lora_hashes)))
        if self.model_hash or self.lora_hashes:  # Civitai's own form; sd-parsers reads this one
            fields.append(("Hashes", civitai_hashes_text(self.model_hash, self.lora_hashes)))
        return tuple(fields)


def a1111_text(recipe: Recipe, index: int, weights: WeightsUsed | None = None) -> str:
    used = weights or WeightsUsed()
    return recipe.to_a1111(index, model_hash=used.model_hash, extra=used.a1111_fields())


def encode_png(image: Image.Image, recipe: Recipe, index: int, weights: WeightsUsed | None = None) -> bytes:
    info = PngInfo()
    info.add_text("parameters", a1111_text(recipe, index, weights))
    info.add_text("atelier", recipe.for_image(index).to_json())
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info, compress_level=4)
    return out.getvalue()
