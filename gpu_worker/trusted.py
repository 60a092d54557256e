"""What a worker takes from a job payload, and what it decides for itself.

A payload is data in Redis: anyone who can write there can write one. So a job names a model
by id and the worker looks the id up in its own catalogue (``models_file``) for the folder or
hub id to load; the payload's ``source`` is never used. Images are decoded only from the formats
the studio sends (PNG, JPEG, WebP), with their byte size and pixel count checked from the header
before any pixel is decoded.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from studio.catalogue import Catalogue, SafetyConfig, load_catalogue
from studio.controlnets import ControlNetEntry
from studio.errors import CatalogueError
from studio.ip_adapters import IPAdapterConfig
from studio.jobs import ModelRef, UpscalerRef

log = logging.getLogger(__name__)
WORKER_FORMATS = ("PNG", "JPEG", "WEBP")  # the studio turns other uploads into PNG before queueing


class WorkerCatalogue:
    """The worker's own models.toml; re-read when the file changes (a new model needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._stat()
        self._catalogue = load_catalogue(path)  # a bad catalogue stops the worker at start
        self._lock = threading.Lock()

    def _stat(self) -> tuple[float, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return found.st_mtime, found.st_size

    def _current(self) -> Catalogue:
        with self._lock:
            stamp = self._stat()
            if stamp is not None and stamp != self._stamp:
                try:
                    self._catalogue = load_catalogue(self.path)
                except CatalogueError as error:  # keep serving the last good one
                    log.warning("kept the previous catalogue: %s", error)
                self._stamp = stamp
            return self._catalogue

    def model(self, wanted: ModelRef) -> ModelRef:
        """The worker's own reference for the model id ``wanted`` names (ValueError if unknown)."""
        entry = self._current().entries.get(wanted.id)
        if entry is None:
            raise ValueError(
                f"model `{wanted.id[:64]}` is not in this worker's catalogue; the operator must add it "
                "to the models file the workers read, or choose another model"
            )
        return entry.ref()

    def controlnet(self, family: str, mode: str) -> ControlNetEntry | None:
        """This worker's ControlNet for a family and control mode ([controlnets]), if any."""
        return self._current().controlnets.get((family, mode))

    def safety(self) -> SafetyConfig | None:
        """The image safety classifier this worker runs on every image ([safety]), if any."""
        return self._current().safety

    def ip_adapter(self, family: str) -> IPAdapterConfig | None:
        """This worker's IP-Adapter for a family's references ([ip_adapter.<family>]), if any."""
        return self._current().ip_adapters.get(family)

    def upscaler(self, wanted: UpscalerRef | None) -> UpscalerRef | None:
        """The worker's own [upscaler] when ``wanted`` names it; None stays None (resampling)."""
        if wanted is None:
            return None
        own = self._current().upscaler
        if own is None or own.id != wanted.id:
            raise ValueError(f"upscale model `{wanted.id[:64]}` is not this worker's configured upscaler")
        return own


_own: WorkerCatalogue | None = None


def own_catalogue() -> WorkerCatalogue:
    """This process's catalogue, from the settings it runs with (training jobs resolve here)."""
    global _own
    if _own is None:
        from studio.settings import load_settings

        _own = WorkerCatalogue(load_settings().models_file)
    return _own


def open_image(
    data: bytes,
    max_bytes: int,
    max_pixels: int,
    what: str = "the image",
    formats: tuple[str, ...] = WORKER_FORMATS,
) -> Image.Image:
    """An image opened lazily (header only) once its bytes, format and pixel count are in bounds.

    Only the decoders named in ``formats`` are tried, so no other Pillow plugin ever parses the
    bytes. Raises ValueError with a sentence for the requester.
    """
    if len(data) > max_bytes:
        raise ValueError(
            f"{what} is {len(data) / 1_048_576:.1f} MiB, above the {max_bytes / 1_048_576:.0f} MiB limit"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            source = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError:
        raise ValueError(f"{what} has far too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError):
        names = ", ".join(formats[:-1]) + f" or {formats[-1]}" if len(formats) > 1 else formats[0]
        raise ValueError(f"{what} is not a {names.replace('WEBP', 'WebP')} image") from None
    if source.width * source.height > max_pixels:
        raise ValueError(
            f"{what} is {source.width}x{source.height}, above the limit of {max_pixels / 1e6:.1f} megapixels"
        )
    return source
