"""The worker's half of /describe: captions of one image by the catalogue's ``[describe]`` model.

The model is this worker's own ``[describe]`` (its models file), never a source named in the
payload. Loaded once per process and kept (it is small next to a diffusion model), again only
when ``[describe]`` changes. One caption is beam-searched; the others are sampled, each from its
own seed, until ``count`` distinct captions are found or the tries run out.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import torch
from PIL import Image

from gpu_worker.generate import decode_image
from studio import jobs
from studio.describe import DescribeConfig, describe_config
from studio.errors import CatalogueError
from studio.settings import Settings

log = logging.getLogger(__name__)
TRIES_PER_CAPTION = 3  # sampled tries per caption wanted, so a repetitive model still ends


class DescribeRefused(Exception):
    """Words for the requester: no model here, an unreadable image."""


class Captioner:
    def __init__(self, config: DescribeConfig, device: str) -> None:
        self.config = config
        self.device = device
        if config.kind == "blip":
            from transformers import BlipForConditionalGeneration, BlipProcessor

            self.processor: Any = BlipProcessor.from_pretrained(config.source, local_files_only=True)
            model: Any = BlipForConditionalGeneration.from_pretrained(config.source, local_files_only=True)
        else:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self.processor = AutoProcessor.from_pretrained(config.source, local_files_only=True)
            model = AutoModelForImageTextToText.from_pretrained(config.source, local_files_only=True)
        self.model = model.to(device).eval()

    def captions(self, image: Image.Image, count: int, seed: int) -> list[str]:
        inputs: dict[str, Any] = {"images": image}
        if self.config.prefix:
            inputs["text"] = self.config.prefix
        encoded = {k: v.to(self.device) for k, v in self.processor(**inputs, return_tensors="pt").items()}
        length = {"max_new_tokens": self.config.max_words * 2, "min_new_tokens": 3}
        found: list[str] = []
        with torch.inference_mode():
            attempts = [None, *range(count * TRIES_PER_CAPTION)]  # None: the beam search
            for attempt in attempts:
                if len(found) >= count:
                    break
                if attempt is None:
                    out = self.model.generate(**encoded, num_beams=3, **length)
                else:
                    torch.manual_seed(seed + attempt)
                    out = self.model.generate(**encoded, do_sample=True, top_p=0.9, **length)
                text = self.processor.batch_decode(out, skip_special_tokens=True)[0].strip()
                if text and text not in found:
                    found.append(text)
        return found


_lock = threading.Lock()
_loaded: dict[tuple[DescribeConfig, str], Captioner] = {}


def captioner(config: DescribeConfig, device: str) -> Captioner:
    with _lock:
        key = (config, device)
        if key not in _loaded:
            _loaded.clear()  # one captioner per process: a changed [describe] replaces it
            _loaded[key] = Captioner(config, device)
        return _loaded[key]


def run_describe(job: jobs.DescribeJob, settings: Settings, device: str) -> jobs.DescribeResult:
    """Blocking: call it in a thread."""
    try:
        config = describe_config(settings.models_file)
    except CatalogueError as error:
        raise DescribeRefused(f"this worker's [describe] is misconfigured ({error})") from None
    if config is None:
        raise DescribeRefused("this worker has no [describe] model configured")
    try:
        image = decode_image(job.image, settings.max_upload_pixels, settings.max_upload_bytes, "the image")
    except (OSError, ValueError) as error:
        raise DescribeRefused(f"the image could not be read ({error})") from None
    started = time.perf_counter()
    try:
        found = captioner(config, device).captions(image, job.count, job.seed)
    except OSError as error:  # missing weights: the operator's to fix
        log.error("the describe model %s could not be loaded: %s", config.source, error)
        raise DescribeRefused(
            "the describe model could not be loaded; the operator can see why in the log"
        ) from None
    return jobs.DescribeResult(captions=found, model=config.source, seconds=time.perf_counter() - started)
