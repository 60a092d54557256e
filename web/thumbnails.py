"""Thumbnails for the gallery and library: WebP, at most 320 px a side, made once per image and
kept on this host (data_dir/thumbnails/<image sha256>.webp). Pixel work runs in a thread."""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from pathlib import Path

from PIL import Image

from studio.artifacts import ArtifactStore, check_digest

SIDE = 320
QUALITY = 72  # a 320 px WebP of a generated image is ~10-25 KB at this quality


def make_thumbnail(png: bytes, side: int = SIDE) -> bytes:
    with Image.open(io.BytesIO(png)) as image:
        image.draft("RGB", (side, side))
        picture = image.convert("RGB")
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "WEBP", quality=QUALITY, method=4)
    return out.getvalue()


class Thumbnails:
    def __init__(self, folder: Path, artifacts: ArtifactStore) -> None:
        self.folder = folder
        self.artifacts = artifacts

    async def of(self, sha: str) -> bytes:
        """The thumbnail of the image artifact ``sha``, made on first use."""
        path = self.folder / f"{check_digest(sha)}.webp"
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            pass
        png = await self.artifacts.read(sha)
        thumbnail = await asyncio.to_thread(make_thumbnail, png)
        await asyncio.to_thread(_write_atomically, path, thumbnail)
        return thumbnail


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)  # two requests at once both write the same bytes: either wins
