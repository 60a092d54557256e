"""The image safety classifier: a transformers image-classification model run on every image.

Loaded once per process (and again only if ``[safety]`` changes), from a local folder or the
local Hugging Face cache, never downloaded. An image is flagged when one of the configured
labels scores at least the threshold. If the classifier cannot be loaded or run, every image is
flagged as unchecked: the policy fails closed, so nothing unchecked is shown by mistake.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from studio.catalogue import SafetyConfig

log = logging.getLogger(__name__)
UNCHECKED = "unchecked"  # the label of an image the classifier could not look at


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    label: str | None  # the flagged label that scored highest (or UNCHECKED)
    score: float | None


class SafetyClassifier:
    def __init__(self, config: SafetyConfig, device: str) -> None:
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        self.config = config
        self.device = device
        self.processor: Any = AutoImageProcessor.from_pretrained(config.source, local_files_only=True)
        model: Any = AutoModelForImageClassification.from_pretrained(config.source, local_files_only=True)
        self.model = model.to(device).eval()
        labels = {int(i): str(name) for i, name in self.model.config.id2label.items()}
        wanted = {name.lower() for name in config.flagged_labels}
        self.flagged_ids = {i: name for i, name in labels.items() if name.lower() in wanted}
        if not self.flagged_ids:
            raise ValueError(
                f"the safety classifier's labels are {sorted(labels.values())}; none of flagged_labels "
                f"{list(config.flagged_labels)} is among them"
            )

    def verdicts(self, images: list[Image.Image]) -> list[Verdict]:
        with torch.inference_mode():
            return self._verdicts(images)

    def _verdicts(self, images: list[Image.Image]) -> list[Verdict]:
        inputs = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        logits = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).logits.float()
        scores = logits.softmax(dim=-1).cpu()
        found: list[Verdict] = []
        for row in scores:
            label_id = max(self.flagged_ids, key=lambda i: float(row[i]))
            score = float(row[label_id])
            found.append(Verdict(score >= self.config.threshold, self.flagged_ids[label_id], score))
        return found


_lock = threading.Lock()
_loaded: dict[tuple[SafetyConfig, str], SafetyClassifier] = {}


def classify(config: SafetyConfig | None, images: list[Image.Image], device: str) -> list[Verdict]:
    """Each image's verdict; none flagged without a classifier; all flagged if it fails."""
    if config is None:
        return [Verdict(False, None, None) for _ in images]
    try:
        with _lock:
            key = (config, device)
            if key not in _loaded:
                _loaded.clear()  # the configuration changed: keep only the current classifier
                _loaded[key] = SafetyClassifier(config, device)
            classifier = _loaded[key]
        return classifier.verdicts(images)
    except (OSError, ValueError, RuntimeError) as error:
        log.error("the safety classifier failed (%s); every image is withheld as unchecked", error)
        return [Verdict(True, UNCHECKED, None) for _ in images]
