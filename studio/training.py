"""LoRA training as a domain: names, triggers, per-family defaults, dataset checks and captions.

Everything here runs before a job is queued, so a bad dataset or option is refused with a
sentence, and nothing is stored or trained.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageOps

from studio.catalogue import ModelEntry
from studio.errors import DatasetRejected, InvalidRecipe
from studio.jobs import TrainingParams
from studio.uploads import UploadRejected, verify_image

MIN_IMAGES = 3
# Names end up in file names (exports) and in `--lora NAME`: letters, digits, '_' and '-' only.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)
_TRIGGER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")
# Words a base model already knows well: as a trigger they drag its old meaning along.
_EVERYDAY = frozenset(
    "man woman person people girl boy child dog cat bird horse car house tree flower face portrait "
    "photo picture art style painting drawing anime cartoon character robot city landscape".split()
)
_STOP = frozenset("a an the of in on at with and or to for by from is are this that".split())
MAX_ASPECT = 3.0  # longer sides than this cannot be cropped to a square without losing the subject

Source = Literal["attachments", "favourites", "board"]
SOURCES: tuple[Source, ...] = ("attachments", "favourites", "board")


@dataclass(frozen=True)
class FamilyTraining:
    steps: int
    rank: int
    learning_rate: float


# Defaults that train a recognisable subject on ~10-20 images without overcooking it.
FAMILY_TRAINING: dict[str, FamilyTraining] = {
    "sd15": FamilyTraining(steps=800, rank=16, learning_rate=1e-4),
    "sdxl": FamilyTraining(steps=1000, rank=16, learning_rate=1e-4),
    # diffusers' and ai-toolkit's Flux recipes: rank 16, 1e-4, ~1000 steps for a subject.
    "flux": FamilyTraining(steps=1000, rank=16, learning_rate=1e-4),
}
# Families whose LoRAs train their text encoders too when asked (Flux: the transformer only).
TEXT_ENCODER_FAMILIES = frozenset({"sd15", "sdxl"})


@dataclass(frozen=True)
class TrainingOptions:
    """What somebody asked for; None means the family's default."""

    steps: int | None = None
    rank: int | None = None
    learning_rate: float | None = None
    resolution: int | None = None
    text_encoder: bool | None = None


@dataclass(frozen=True)
class TrainingImage:
    data: bytes
    caption: str | None = None  # what else is in the picture (Discord: the attachment's alt text)


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidRecipe(
            "name",
            "A model name is 2-32 letters, digits, `_` or `-`, starting with a letter or digit "
            f"(it becomes a file name); `{name[:40]}` is not.",
        )
    if name.lower() in _RESERVED:
        raise InvalidRecipe("name", f"`{name}` is a reserved file name on Windows; choose another name.")
    return name


def check_trigger(trigger: str) -> str:
    trigger = trigger.strip()
    if not _TRIGGER.match(trigger):
        raise InvalidRecipe(
            "trigger",
            "The trigger is one word of 2-32 letters, digits, `_` or `-` (a rare one such as `ohwx` or "
            "`zxq_robot` works best).",
        )
    return trigger


def training_params(
    options: TrainingOptions,
    model: ModelEntry,
    seed: int,
    *,
    batch_size: int = 1,
    gradient_accumulation: int = 1,
    mixed_precision: Literal["no", "fp16", "bf16"] = "no",
    text_encoder: bool = False,
    max_steps: int = 5000,
) -> TrainingParams:
    """The run's settings: the family's defaults, overridden by the options, within bounds."""
    defaults = FAMILY_TRAINING.get(model.family)
    if defaults is None:
        raise InvalidRecipe(
            "base_model",
            f"The Forge trains SD 1.5, SDXL and Flux LoRAs; `{model.id}` is {model.family_spec.label}. "
            "Choose another base model.",
        )
    steps = options.steps if options.steps is not None else defaults.steps
    rank = options.rank if options.rank is not None else defaults.rank
    rate = options.learning_rate if options.learning_rate is not None else defaults.learning_rate
    resolution = options.resolution if options.resolution is not None else model.native_size
    family = model.family_spec
    if not 10 <= steps <= max_steps:
        raise InvalidRecipe("steps", f"Training steps must be between 10 and {max_steps} (got {steps}).")
    if not 1 <= rank <= 128:
        raise InvalidRecipe("rank", f"Rank must be between 1 and 128 (got {rank}); 8-32 suits most subjects.")
    if not (math.isfinite(rate) and 1e-6 <= rate <= 0.1):
        raise InvalidRecipe(
            "learning_rate", f"The learning rate must be between 1e-6 and 0.1 (got {rate:g})."
        )
    low, high = max(64, family.min_side), min(family.max_side, 2048)
    if not low <= resolution <= high or resolution % family.multiple:
        raise InvalidRecipe(
            "resolution",
            f"The training resolution must be a multiple of {family.multiple} between {low} and {high} "
            f"(got {resolution}).",
        )
    train_text = options.text_encoder if options.text_encoder is not None else text_encoder
    if train_text and model.family not in TEXT_ENCODER_FAMILIES:
        if options.text_encoder:  # asked for by name: say why not; a server-wide default just yields
            raise InvalidRecipe(
                "text_encoder",
                f"{family.label} LoRAs train the transformer only; text-encoder training is for "
                "SD 1.5 and SDXL models.",
            )
        train_text = False
    return TrainingParams(
        steps=steps,
        rank=rank,
        alpha=float(rank),  # alpha = rank: the adapter's scale is 1, whatever the rank
        learning_rate=rate,
        resolution=resolution,
        batch_size=batch_size,
        gradient_accumulation=gradient_accumulation,
        mixed_precision=mixed_precision,
        train_text_encoder=train_text,
        seed=seed,
        progress_every=max(1, min(25, steps // 40)),
        sample_every=max(1, steps // 4),
    )


def check_count(count: int, maximum: int) -> None:
    if count < MIN_IMAGES:
        raise DatasetRejected(
            f"Training needs at least {MIN_IMAGES} images of the subject; got {count}. "
            "10-20 varied images work best."
        )
    if count > maximum:
        raise DatasetRejected(f"Training takes at most {maximum} images; got {count}. Pick your best ones.")


def captions_for(trigger: str, images: list[TrainingImage]) -> list[str]:
    """Each caption starts with the trigger; an image's own caption describes everything else."""
    out = []
    for image in images:
        extra = " ".join((image.caption or "").split())[:300]
        words = {w.lower() for w in re.findall(r"[\w-]+", extra)}
        out.append(extra if trigger.lower() in words else f"{trigger}, {extra}" if extra else trigger)
    return out


def caption_warnings(trigger: str, images: list[TrainingImage]) -> list[str]:
    """Advice (not refusals) when the captions would keep the trigger from learning the subject."""
    found = []
    if trigger.lower() in _EVERYDAY:
        found.append(
            f"`{trigger}` is an everyday word the base model already knows; a rare trigger such as "
            f"`ohwx_{trigger.lower()}` learns faster and leaves other prompts alone."
        )
    captions = [image.caption for image in images if image.caption and image.caption.strip()]
    if len(captions) >= 2 and len(captions) == len(images):
        counts: Counter[str] = Counter()
        for caption in captions:
            counts.update(
                {w for w in re.findall(r"[a-z][a-z-]+", caption.lower()) if w not in _STOP}
                - {trigger.lower()}
            )
        shared = sorted(word for word, n in counts.items() if n == len(captions))
        if shared:
            listed = ", ".join(f"`{w}`" for w in shared[:5])
            found.append(
                f"Every caption mentions {listed}: the model will tie that to those words rather than "
                f"to `{trigger}`. Caption only what changes between images, not what makes the subject."
            )
    return found


def prepare_image(data: bytes, resolution: int, max_bytes: int, max_pixels: int, label: str) -> bytes:
    """One training image: checked whole (header first), then cropped to a square PNG.

    Pixel work: call it in a thread. ``label`` ("image 3") names the image in refusals.
    """
    try:
        info = verify_image(data, max_bytes, max_pixels)
    except UploadRejected as exc:
        raise DatasetRejected(f"The dataset's {label} was refused: {exc}") from None
    short, long = sorted((info.width, info.height))
    if short * 2 < resolution:
        raise DatasetRejected(
            f"The dataset's {label} is {info.width}x{info.height}; training at {resolution} px needs at "
            f"least {resolution // 2} px on the short side (upscaled images teach blur)."
        )
    if long > short * MAX_ASPECT:
        raise DatasetRejected(
            f"The dataset's {label} is {info.width}x{info.height}: too narrow to crop to a square "
            "without losing the subject. Crop it nearer to square first."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as source:
            image = ImageOps.exif_transpose(source)
            if image.mode in ("RGBA", "LA", "P"):  # transparency becomes white, not black
                rgba = image.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                image = flat
            fitted = ImageOps.fit(image.convert("RGB"), (resolution, resolution), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    fitted.save(out, format="PNG", compress_level=3)
    return out.getvalue()
