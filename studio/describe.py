"""/describe: an image in, four suggested prompts out, from the catalogue's captioning model.

The model is the catalogue's ``[describe]`` table (an image-to-text model from transformers: BLIP,
or any ``AutoModelForImageTextToText`` with its processor), read from the models file when asked,
so the studio and every worker use the same one. It runs on an inference worker (it wants the
GPU the generations use; post workers stay torch-free and light). The worker returns several
captions (one beam-searched, the rest sampled from seeds the image's digest fixes, so the same
image gets the same suggestions); they become /imagine-ready prompts here: cleaned of markup and
flags, deduplicated, four of them. ``/train caption:auto`` takes the first caption of each image.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from studio import jobs
from studio.errors import CatalogueError, StudioError
from studio.queue import JobQueue
from studio.settings import Settings
from studio.tomlfile import entry, read_toml, table, transformers_source
from studio.training import TrainingImage
from studio.uploads import for_worker, verify_image

log = logging.getLogger(__name__)
PROMPTS = 4  # suggestions per image
CANDIDATES = 8  # captions asked of the worker for them
AUTO_CAPTIONS_AT_ONCE = 4  # caption:auto's describe jobs in flight together
MAX_PROMPT_CHARS = 300
# Extra framings when the model gives fewer distinct captions than PROMPTS.
FRAMINGS = (
    "{}, detailed photograph",
    "{}, digital painting",
    "{}, cinematic lighting",
    "{}, watercolor illustration",
)
NO_MODEL = (
    "No describe model is configured on this studio: the operator adds a `[describe]` model "
    "to the catalogue (see the README)."
)
DESCRIBE_FAILURES = frozenset({"DescribeRefused"})  # the worker's own words reach the user


class DescribeConfig(BaseModel):
    """``[describe]``: the image-to-text model of /describe and ``/train caption:auto``.

    ``source``: a transformers folder or a hub id in the local cache (never downloaded at run
    time). ``kind``: ``blip`` (BlipForConditionalGeneration, e.g. Salesforce/blip-image-captioning-
    large) or ``auto`` (AutoProcessor + AutoModelForImageTextToText, e.g. microsoft/git-base).
    ``prefix``: text the caption continues (BLIP: "a picture of"); ``max_words`` bounds a caption."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    kind: Literal["blip", "auto"] = "blip"
    prefix: str = Field(default="", max_length=100)
    max_words: int = Field(default=30, ge=4, le=75)


def load_describe(raw: object, base: Path, where: str) -> DescribeConfig | None:
    """``[describe]`` of a catalogue file, its local source made absolute; None when absent."""
    if raw is None:
        return None
    found = transformers_source(table(raw, where, "describe", "describe"), base, where, "describe")
    return entry(DescribeConfig, found, where, "describe", "describe")


_read: dict[Path, tuple[tuple[float, int], DescribeConfig | None]] = {}
_read_lock = threading.Lock()


def describe_config(models_file: str | Path) -> DescribeConfig | None:
    """The ``[describe]`` of a models file, read again only when the file changes."""
    path = Path(models_file)
    stamp = os.stat(path)
    key = (stamp.st_mtime, stamp.st_size)
    with _read_lock:
        known = _read.get(path)
        if known is not None and known[0] == key:
            return known[1]
    config = load_describe(read_toml(path).get("describe"), path.parent, str(path))
    with _read_lock:
        _read[path] = (key, config)
    return config


_ARTEFACTS = re.compile(r"\b(araf+e?d?|arafed|there is|there are)\b", re.IGNORECASE)  # BLIP's tics
_NOT_PROMPT = re.compile(r"[^\w\s,.'()&-]")  # markup, mentions, emphasis: none reach a prompt


def clean_caption(text: str) -> str:
    """A caption as a prompt: no flags (``--``), markup or mentions, single spaces, bounded."""
    text = _ARTEFACTS.sub(" ", text.replace("—", " ").replace("--", " "))
    text = _NOT_PROMPT.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip(" ,.-")
    if len(text) > MAX_PROMPT_CHARS:
        text = text[:MAX_PROMPT_CHARS].rsplit(" ", 1)[0]
    return text


def prompts_from(captions: list[str], count: int = PROMPTS) -> list[str]:
    """``count`` distinct /imagine-ready prompts from the model's captions: each cleaned, the
    repeats dropped, and framings of the first added when the model said fewer different things."""
    prompts: list[str] = []
    seen: set[str] = set()

    def add(prompt: str) -> None:
        if prompt and prompt.lower() not in seen and len(prompts) < count:
            seen.add(prompt.lower())
            prompts.append(prompt)

    for caption in captions:
        add(clean_caption(caption))
    if not prompts:
        raise StudioError("The describe model found no words for this image; try another image.")
    first = prompts[0]
    for framing in FRAMINGS:
        add(framing.format(first))
    return prompts


def seed_of(image: bytes) -> int:
    """The same image gets the same suggestions."""
    return int.from_bytes(hashlib.sha256(image).digest()[:4], "big")


class Describer:
    def __init__(self, settings: Settings, catalogue_path: str, queue: JobQueue) -> None:
        self.settings = settings
        self.catalogue_path = Path(catalogue_path)  # the models file the catalogue came from
        self.queue = queue

    def configured(self) -> DescribeConfig | None:
        """The catalogue's ``[describe]``, or None; a broken one is said in words."""
        if not self.catalogue_path.is_file():  # a catalogue made in memory (tests, tools)
            return None
        try:
            return describe_config(self.catalogue_path)
        except CatalogueError as error:
            log.error("/describe is off: %s", error)
            raise StudioError(
                "The describe model is misconfigured; the operator can see why in the log."
            ) from None

    async def describe(self, image: bytes) -> list[str]:
        """Four suggested prompts for an image (checked first: size, pixels, a real image)."""
        captions = await self._captions(image, CANDIDATES)
        return prompts_from(captions)

    async def caption(self, image: bytes) -> str:
        """One caption (``/train caption:auto``): the model's beam-searched one, cleaned."""
        captions = await self._captions(image, 1)
        return next((c for c in map(clean_caption, captions) if c), "")

    async def fill_captions(self, images: list[TrainingImage]) -> list[TrainingImage]:
        """``/train caption:auto``: the images without a caption (alt text) get the model's."""
        missing = [i for i, image in enumerate(images) if not (image.caption or "").strip()]
        if not missing:
            return images
        if self.configured() is None:
            raise StudioError(
                "caption:auto needs a describe model, and none is configured here; "
                "give your images alt text instead."
            )
        gate = asyncio.Semaphore(AUTO_CAPTIONS_AT_ONCE)

        async def caption_of(image: TrainingImage) -> TrainingImage:
            async with gate:
                return replace(image, caption=await self.caption(image.data) or None)

        filled = await asyncio.gather(*(caption_of(images[i]) for i in missing))
        out = list(images)
        for i, image in zip(missing, filled, strict=True):
            out[i] = image
        return out

    async def _captions(self, image: bytes, count: int) -> list[str]:
        if self.configured() is None:
            raise StudioError(NO_MODEL)
        limits = (self.settings.max_upload_bytes, self.settings.max_upload_pixels)
        await asyncio.to_thread(verify_image, image, *limits)
        payload = jobs.DescribeJob(
            image=await asyncio.to_thread(for_worker, image), count=count, seed=seed_of(image)
        )
        result = await self.queue.run(
            jobs.DESCRIBE_SPEC,
            payload,
            timeout=self.settings.describe_timeout_s,
            what="The description",
            user_facing=DESCRIBE_FAILURES,
        )
        return result.captions
