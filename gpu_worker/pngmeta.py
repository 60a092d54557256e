"""PNG encoding that carries the recipe: A1111 `parameters` text and an `atelier` JSON chunk."""

from __future__ import annotations

import io

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.recipe import Recipe


def encode_png(image: Image.Image, recipe: Recipe, index: int) -> bytes:
    info = PngInfo()
    info.add_text("parameters", recipe.to_a1111(index))
    info.add_text("atelier", recipe.for_image(index).to_json())
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info, compress_level=4)
    return out.getvalue()
