"""The Recipe: everything needed to reproduce an image, and the inline-flag prompt syntax.

A ``Draft`` is what a user asked for (prompt text plus optional overrides, parsed from
Midjourney-style flags such as ``--ar 3:2 --seed 42``). ``resolve`` completes a draft against
the model catalogue into a ``Recipe``: immutable, validated and JSON-serialisable.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from studio.catalogue import Catalogue
from studio.errors import InvalidRecipe, UnknownFlag
from studio.families import ASPECTS, FAMILIES, aspect_size
from studio.styles import StyleBook

RECIPE_VERSION = 1
MAX_PROMPT_CHARS = 2000
MAX_NEGATIVE_CHARS = 1000
MAX_BATCH = 8
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_SEED = 2**32 - 1
SAMPLERS: dict[str, str] = {  # recipe name -> the name A1111 and its readers use
    "dpmpp_2m": "DPM++ 2M",
    "euler": "Euler",
    "euler_a": "Euler a",
    "ddim": "DDIM",
}
DEFAULT_SAMPLER = "dpmpp_2m"
DEFAULT_STRENGTH = 0.6
MAX_LORAS = 4
MAX_REFERENCES = 4  # style and character references (IP-Adapter images) in one recipe
MAX_REFERENCE_WEIGHT = 2.0  # an IP-Adapter scale: 0 ignores the image, 1 is its full say
MAX_CONTROL_STRENGTH = 2.0  # a ControlNet conditioning scale
MAX_CHAOS = 100
TILE_FAMILIES = ("sd15", "sdxl")  # --tile: circular padding in a UNet and its VAE
MAX_EDIT_CHARS = 60
CONTROL_MODES = ("canny", "depth", "pose", "scribble", "lineart")
ReferenceKind = Literal["style", "character"]
_LORA_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,63}$")
# Explicit prompt weights (A1111's `(word:1.3)`, compel's `(word)1.3`, `(word)++`, `word++`,
# `word--`, `.blend(`/`.and(`): families without weighting refuse them. Plain parentheses are text.
EXPLICIT_WEIGHT = re.compile(
    r"\([^()]*:\s*-?\d*\.?\d+\s*\)"
    r"|\)(?:\d*\.?\d+|\+\+?|--?)"
    r"|\w(?:\+\+?|--?)(?=[\s,)]|$)"
    r"|\.(?:blend|and)\("
)


class LoraRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    weight: float = 1.0


class Reference(BaseModel):
    """An image the result should take after: its style (``--sref``) or its character (``--cref``),
    through the family's IP-Adapter."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ReferenceKind
    image: str  # sha256 of the reference image artifact (.img)
    weight: float = 1.0  # the adapter's scale for it (--sw / --cw), 0..MAX_REFERENCE_WEIGHT


class Control(BaseModel):
    """Structure control through a ControlNet: ``image`` is what the person gave; the worker
    derives the control map from it for ``mode`` (canny edges need no weights)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: str  # one of CONTROL_MODES
    image: str  # sha256 of the control source artifact (.img)
    strength: float = 1.0  # conditioning scale, 0..MAX_CONTROL_STRENGTH
    start: float = 0.0  # the fraction of the steps where control begins ...
    end: float = 1.0  # ... and ends
    map: str | None = None  # sha256 of the control map derived from it (.png), once made


class Recipe(BaseModel):
    """A complete generation recipe. Image ``i`` of the batch uses seed ``seed + i`` (mod 2^32)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = RECIPE_VERSION
    model: str
    family: str
    prompt: str
    negative_prompt: str = ""
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    batch: int = 1
    aspect: str | None = None
    sampler: str = DEFAULT_SAMPLER
    loras: tuple[LoraRef, ...] = ()
    init_image: str | None = None  # sha256 of the init image artifact (img2img)
    strength: float | None = None
    mask: str | None = None  # sha256 of the mask artifact (inpainting: white is repainted)
    parent_image: str | None = None
    style: str | None = None  # the preset worked into prompt and negative (for display)
    tile: bool = False  # seamless tiling: circular padding in the denoiser's and VAE's convolutions
    chaos: int = 0  # 0..100: how much the batch's images differ (seeded jitter, reproducible)
    references: tuple[Reference, ...] = ()  # style and character references (IP-Adapter)
    control: Control | None = None  # structure control (ControlNet)
    edit: str | None = None  # how it was made from its parent: "vary (subtle)", "zoom out 2x", ...

    @model_validator(mode="after")
    def _check(self) -> Recipe:
        _check_recipe(self)
        return self

    def seed_for(self, index: int) -> int:
        return (self.seed + index) % (MAX_SEED + 1)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Recipe:
        return cls.model_validate_json(text)

    def for_image(self, index: int) -> Recipe:
        """The single-image recipe that reproduces image ``index`` of this batch."""
        return self.model_copy(update={"seed": self.seed_for(index), "batch": 1})

    def to_a1111(
        self, index: int = 0, model_hash: str | None = None, extra: tuple[tuple[str, str], ...] = ()
    ) -> str:
        """The A1111 ``parameters`` text for image ``index`` (PNG Info, Civitai and parsers read it);
        the worker adds what only it knows: the weights' ``model_hash`` and ``extra`` fields."""
        lines = [self.prompt]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        fields = [
            ("Steps", str(self.steps)),
            ("Sampler", SAMPLERS[self.sampler]),
            ("CFG scale", _num(self.guidance)),
            ("Seed", str(self.seed_for(index))),
            ("Size", f"{self.width}x{self.height}"),
            *([("Model hash", model_hash)] if model_hash else []),
            ("Model", self.model),
        ]
        if self.strength is not None:
            fields.append(("Denoising strength", _num(self.strength)))
        if self.loras:
            fields.append(("Lora weights", json.dumps({lo.name: lo.weight for lo in self.loras})))
        fields += extra
        fields.append(("Version", "Atelier"))
        lines.append(", ".join(f"{key}: {value}" for key, value in fields))
        return "\n".join(lines)

    def to_prompt_text(self) -> str:
        """The recipe as inline-flag prompt text that parses back to the same settings.

        What text cannot carry stays out: the init image and mask (pasted into /imagine, the text
        makes a new image from the same settings; its ``--strength`` applies again with an init
        image, e.g. in /remix), reference and control images, the parent link and edit, and the
        style, already worked into the prompt.
        """
        return Draft(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt or None,
            model=self.model,
            aspect=self.aspect,
            width=None if self.aspect else self.width,
            height=None if self.aspect else self.height,
            seed=self.seed,
            steps=self.steps,
            guidance=self.guidance,
            batch=self.batch,
            sampler=self.sampler,
            loras=self.loras or None,
            strength=self.strength,
            tile=self.tile or None,
            chaos=self.chaos or None,
        ).render()


def _num(value: float) -> str:
    return repr(float(value)).removesuffix(".0") if float(value).is_integer() else repr(float(value))


def _check_recipe(r: Recipe) -> None:
    family = FAMILIES.get(r.family)
    if family is None:
        raise InvalidRecipe("family", f"Unknown model family `{r.family}`; known: {', '.join(FAMILIES)}.")
    if not r.prompt.strip():
        raise InvalidRecipe("prompt", "The prompt is empty: describe what you want to see.")
    if len(r.prompt) > MAX_PROMPT_CHARS:
        raise InvalidRecipe(
            "prompt", f"The prompt is {len(r.prompt)} characters long; the limit is {MAX_PROMPT_CHARS}."
        )
    if len(r.negative_prompt) > MAX_NEGATIVE_CHARS:
        raise InvalidRecipe(
            "negative_prompt",
            f"The negative prompt is {len(r.negative_prompt)} characters long; "
            f"the limit is {MAX_NEGATIVE_CHARS}.",
        )
    if not 1 <= r.batch <= MAX_BATCH:
        raise InvalidRecipe("batch", f"Batch must be between 1 and {MAX_BATCH} images (got {r.batch}).")
    if not 1 <= r.steps <= MAX_STEPS:
        raise InvalidRecipe("steps", f"Steps must be between 1 and {MAX_STEPS} (got {r.steps}).")
    if not (math.isfinite(r.guidance) and 0 <= r.guidance <= MAX_GUIDANCE):
        raise InvalidRecipe(
            "guidance", f"Guidance (--cfg) must be between 0 and {MAX_GUIDANCE:g} (got {r.guidance})."
        )
    if not 0 <= r.seed <= MAX_SEED:
        raise InvalidRecipe("seed", f"Seed must be between 0 and {MAX_SEED} (got {r.seed}).")
    for name, value in (("width", r.width), ("height", r.height)):
        if value % family.multiple:
            which = "" if family.multiple == 8 else f" for {family.label} models"
            raise InvalidRecipe(
                name, f"The {name} must be a multiple of {family.multiple}{which} (got {value})."
            )
        if not family.min_side <= value <= family.max_side:
            raise InvalidRecipe(
                name,
                f"The {name} must be between {family.min_side} and {family.max_side} pixels "
                f"for {family.name} models (got {value}).",
            )
    if r.aspect is not None and r.aspect not in ASPECTS:
        raise InvalidRecipe("aspect", f"Aspect ratio must be one of {', '.join(ASPECTS)} (got {r.aspect}).")
    if r.sampler not in SAMPLERS:
        raise InvalidRecipe("sampler", f"Sampler must be one of {', '.join(SAMPLERS)} (got {r.sampler}).")
    if r.sampler not in family.samplers:
        raise InvalidRecipe(
            "sampler",
            f"{family.label} models sample with {' or '.join(family.samplers)} only (got {r.sampler}).",
        )
    if not family.weighting:
        for field, text in (("prompt", r.prompt), ("negative_prompt", r.negative_prompt)):
            if found := EXPLICIT_WEIGHT.search(text):
                raise InvalidRecipe(
                    field,
                    f"{family.label} models take no prompt weights such as `{found[0]}`; write the "
                    "words plainly and put the important ones first (plain parentheses are fine).",
                )
    if r.strength is not None and not (math.isfinite(r.strength) and 0 < r.strength <= 1):
        raise InvalidRecipe("strength", f"Strength must be above 0 and at most 1 (got {r.strength}).")
    if r.strength is not None and r.init_image is None:
        raise InvalidRecipe("strength", "Strength only applies when there is an init image.")
    if r.mask is not None and r.init_image is None:
        raise InvalidRecipe("mask", "A mask needs the image it belongs to.")
    if len(r.loras) > MAX_LORAS:
        raise InvalidRecipe("lora", f"At most {MAX_LORAS} LoRAs can be combined in one recipe.")
    if len({lora.name.lower() for lora in r.loras}) < len(r.loras):
        raise InvalidRecipe("lora", "Each LoRA can be named once per recipe; give it one weight.")
    for lora in r.loras:
        if not _LORA_NAME.match(lora.name):
            raise InvalidRecipe("lora", f"`{lora.name}` is not a valid LoRA name.")
        if not (math.isfinite(lora.weight) and -4 <= lora.weight <= 4):
            raise InvalidRecipe("lora", f"LoRA weight must be between -4 and 4 (got {lora.weight}).")
    if not 0 <= r.chaos <= MAX_CHAOS:
        raise InvalidRecipe("chaos", f"`--chaos` must be between 0 and {MAX_CHAOS} (got {r.chaos}).")
    if r.tile and r.family not in TILE_FAMILIES:  # gpu_worker/tiling.py: UNets only
        raise InvalidRecipe(
            "tile",
            f"`--tile` works with SD 1.5 and SDXL models only; {family.label} models cannot make "
            "seamless tiles yet.",
        )
    if len(r.references) > MAX_REFERENCES:
        raise InvalidRecipe(
            "references", f"At most {MAX_REFERENCES} reference images (--sref, --cref) in one recipe."
        )
    for reference in r.references:
        flag = "--sw" if reference.kind == "style" else "--cw"
        if not (math.isfinite(reference.weight) and 0 <= reference.weight <= MAX_REFERENCE_WEIGHT):
            raise InvalidRecipe(
                flag, f"`{flag}` must be between 0 and {MAX_REFERENCE_WEIGHT:g} (got {reference.weight:g})."
            )
    if r.control is not None:
        _check_control(r.control)
    if r.edit is not None and not 0 < len(r.edit) <= MAX_EDIT_CHARS:
        raise InvalidRecipe("edit", f"An edit's name is 1 to {MAX_EDIT_CHARS} characters.")


def _check_control(control: Control) -> None:
    if control.mode not in CONTROL_MODES:
        raise InvalidRecipe(
            "control", f"Control mode must be one of {', '.join(CONTROL_MODES)} (got {control.mode})."
        )
    if not (math.isfinite(control.strength) and 0 <= control.strength <= MAX_CONTROL_STRENGTH):
        raise InvalidRecipe(
            "control_strength",
            f"Control strength must be between 0 and {MAX_CONTROL_STRENGTH:g} (got {control.strength:g}).",
        )
    if not (
        math.isfinite(control.start) and math.isfinite(control.end) and 0 <= control.start < control.end <= 1
    ):
        raise InvalidRecipe(
            "control_steps",
            "Control start and end are fractions of the steps with 0 <= start < end <= 1 "
            f"(got {control.start:g} and {control.end:g}).",
        )


class Draft(BaseModel):
    """What a user asked for: prompt text and optional settings; ``None`` means "not said"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str = ""
    negative_prompt: str | None = None
    model: str | None = None
    aspect: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    batch: int | None = None
    sampler: str | None = None
    loras: tuple[LoraRef, ...] | None = None
    strength: float | None = None
    style: str | None = None
    tile: bool | None = None
    chaos: int | None = None
    # Reference sources as written (--sref/--cref): "board", "favourites" or a message link; the
    # use case turns them (and attached images) into the recipe's references, weighted --sw/--cw.
    sref: tuple[str, ...] | None = None
    cref: tuple[str, ...] | None = None
    sw: float | None = None
    cw: float | None = None

    # What front ends offer besides the prompt, by the names people see (see from_options).
    OPTIONS: ClassVar[tuple[str, ...]] = (
        "negative",
        "model",
        "aspect",
        "batch",
        "seed",
        "steps",
        "guidance",
        "sampler",
        "style",
        "loras",
        "strength",
        "tile",
        "chaos",
        "sw",
        "cw",
    )

    @classmethod
    def from_options(cls, options: Mapping[str, Any], /, **overrides: Any) -> Draft:
        """The draft a front end's options ask for (a command's, a form's, the CLI's arguments).

        Options go by the names people see: ``negative`` is the negative prompt, ``loras`` the
        text ``name:0.8, other:0.5``. An option that is missing or None is not said; names that
        are no option of a draft (project, private, ...) are left out; ``overrides`` win.
        """
        said = {**options, **overrides}
        values = {name: said.get(name) for name in cls.OPTIONS}
        negative, loras = values.pop("negative"), values.pop("loras")
        return cls(negative_prompt=negative, loras=parse_loras(loras) if loras else None, **values)

    def merged(self, override: Draft) -> Draft:
        """This draft with every setting ``override`` states taking precedence (options beat flags)."""
        update: dict[str, Any] = {k: v for k, v in override.model_dump().items() if v not in (None, "")}
        if "aspect" in update:
            update.setdefault("width", None)
            update.setdefault("height", None)
        if "width" in update or "height" in update:
            update.setdefault("aspect", None)
        if "loras" in update:
            update["loras"] = override.loras
        for sources in ("sref", "cref"):  # references add up: a flag's and an option's both count
            if sources in update and getattr(self, sources):
                update[sources] = (*getattr(self, sources), *update[sources])
        return self.model_copy(update=update)

    def render(self) -> str:
        """Back to inline-flag text; ``parse_prompt(d.render()) == d`` for normalised drafts."""
        parts = [self.prompt] if self.prompt else []
        if self.negative_prompt:
            parts.append(f"--no {self.negative_prompt}")
        if self.model is not None:
            parts.append(f"--model {self.model}")
        if self.aspect is not None:
            parts.append(f"--ar {self.aspect}")
        if self.width is not None or self.height is not None:
            parts.append(f"--size {self.width or 0}x{self.height or 0}")
        if self.seed is not None:
            parts.append(f"--seed {self.seed}")
        if self.steps is not None:
            parts.append(f"--steps {self.steps}")
        if self.guidance is not None:
            parts.append(f"--cfg {_num(self.guidance)}")
        if self.batch is not None:
            parts.append(f"--batch {self.batch}")
        if self.sampler is not None:
            parts.append(f"--sampler {self.sampler}")
        for lora in self.loras or ():
            parts.append(f"--lora {lora.name}:{_num(lora.weight)}")
        if self.strength is not None:
            parts.append(f"--strength {_num(self.strength)}")
        if self.style is not None:
            parts.append(f"--style {self.style}")
        if self.tile:
            parts.append("--tile")
        if self.chaos is not None:
            parts.append(f"--chaos {self.chaos}")
        for kind in ("sref", "cref"):
            for source in getattr(self, kind) or ():
                parts.append(f"--{kind} {source}")
        if self.sw is not None:
            parts.append(f"--sw {_num(self.sw)}")
        if self.cw is not None:
            parts.append(f"--cw {_num(self.cw)}")
        return " ".join(parts)


# Flag -> Draft field; aliases map to the same field.
_FLAGS: dict[str, str] = {
    "--ar": "aspect",
    "--aspect": "aspect",
    "--no": "negative_prompt",
    "--model": "model",
    "--m": "model",
    "--size": "size",
    "--seed": "seed",
    "--steps": "steps",
    "--cfg": "guidance",
    "--guidance": "guidance",
    "--batch": "batch",
    "--sampler": "sampler",
    "--lora": "lora",
    "--strength": "strength",
    "--style": "style",
    "--tile": "tile",
    "--chaos": "chaos",
    "--sref": "sref",
    "--cref": "cref",
    "--sw": "sw",
    "--cw": "cw",
}
_SWITCHES = {"tile"}  # flags that take no value
_FLAG_TOKEN = re.compile(r"^--[A-Za-z]")


def is_flag(token: str) -> bool:
    return bool(_FLAG_TOKEN.match(token))


def _int(flag: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidRecipe(flag, f"`{flag}` needs a whole number (got `{text}`).") from None


def _float(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidRecipe(flag, f"`{flag}` needs a number (got `{text}`).") from None
    if not math.isfinite(value):
        raise InvalidRecipe(flag, f"`{flag}` needs a finite number (got `{text}`).")
    return value


def parse_lora(value: str) -> LoraRef:
    """``NAME`` or ``NAME:WEIGHT`` (weight 1 when not given)."""
    name, _, weight = value.strip().partition(":")
    if not _LORA_NAME.match(name):
        raise InvalidRecipe("lora", f"A LoRA is NAME or NAME:WEIGHT, e.g. `mychar:0.8` (got `{value[:60]}`).")
    return LoraRef(name=name, weight=_float("--lora", weight) if weight else 1.0)


def parse_loras(text: str) -> tuple[LoraRef, ...]:
    """Several LoRAs as one option: ``mychar:0.8, inkstyle:0.5`` (commas or spaces between them)."""
    return tuple(parse_lora(part) for part in re.split(r"[,\s]+", text.strip()) if part)


def parse_prompt(text: str) -> Draft:
    """Split a prompt with inline flags into a Draft. Raises InvalidRecipe / UnknownFlag."""
    # Phones turn "--" into an em dash; accept it at the start of a token.
    tokens = [("--" + t[1:]) if t.startswith("—") and len(t) > 1 else t for t in text.split()]
    prompt_words: list[str] = []
    negatives: list[str] = []
    values: dict[str, Any] = {}
    loras: list[LoraRef] = []
    sources: dict[str, list[str]] = {"sref": [], "cref": []}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not is_flag(token):
            prompt_words.append(token)
            i += 1
            continue
        flag = token.lower()
        field = _FLAGS.get(flag)
        if field is None:
            raise UnknownFlag(token, sorted(set(_FLAGS)))
        j = i + 1
        while j < len(tokens) and not is_flag(tokens[j]):
            j += 1
        args = tokens[i + 1 : j]
        if field in _SWITCHES:
            values[field] = True
            prompt_words.extend(args)  # a switch takes no value: what follows is prompt again
            i = j
            continue
        if field == "negative_prompt":
            if not args:
                raise InvalidRecipe(flag, "`--no` needs the things to avoid, e.g. `--no blurry, text`.")
            negatives.append(" ".join(args))
            i = j
            continue
        if not args:
            raise InvalidRecipe(flag, f"`{flag}` needs a value.")
        value, rest = args[0], args[1:]
        prompt_words.extend(rest)  # words after a flag's value belong to the prompt again
        if field == "aspect":
            if value not in ASPECTS:
                raise InvalidRecipe(
                    "aspect", f"Aspect ratio must be one of {', '.join(ASPECTS)} (got {value})."
                )
            values["aspect"] = value
        elif field == "size":
            match = re.fullmatch(r"(\d+)[xX×](\d+)", value)
            if not match:
                raise InvalidRecipe("size", f"`--size` needs WIDTHxHEIGHT, e.g. 768x512 (got `{value}`).")
            values["width"], values["height"] = int(match[1]), int(match[2])
        elif field in ("seed", "steps", "batch", "chaos"):
            values[field] = _int(flag, value)
        elif field in ("guidance", "strength", "sw", "cw"):
            values[field] = _float(flag, value)
        elif field in sources:
            sources[field].append(value)
        elif field == "lora":
            loras.append(parse_lora(value))
        else:  # model, sampler, style
            values[field] = value.lower()
        i = j
    if negatives:
        values["negative_prompt"] = ", ".join(negatives)
    if loras:
        values["loras"] = tuple(loras)
    for field, found in sources.items():
        if found:
            values[field] = tuple(found)
    return Draft(prompt=" ".join(prompt_words), **values)


def resolve(
    draft: Draft,
    catalogue: Catalogue,
    random_seed: int,
    init_image: str | None = None,
    styles: StyleBook | None = None,
    references: tuple[Reference, ...] = (),
    control: Control | None = None,
) -> Recipe:
    """Complete a draft with its style and the model's defaults (what the user said wins).

    ``random_seed`` is used when none was given. ``references`` and ``control`` are the images the
    use case found for the draft's sources and options (their weights already applied).
    """
    style = None
    if draft.style:
        style = (styles or StyleBook({})).get(draft.style)
    entry = catalogue.get(draft.model or (style.model if style else None))
    family = entry.family_spec
    if draft.width is not None or draft.height is not None:
        width = draft.width if draft.width is not None else entry.native_size
        height = draft.height if draft.height is not None else entry.native_size
        aspect = None
    else:
        aspect = draft.aspect or (style.aspect if style and style.aspect else "1:1")
        if aspect not in ASPECTS:
            raise InvalidRecipe("aspect", f"Aspect ratio must be one of {', '.join(ASPECTS)} (got {aspect}).")
        width, height = aspect_size(family, aspect, entry.native_size)
    prompt, negative = draft.prompt.strip(), (draft.negative_prompt or "").strip()
    takes_negative = entry.takes_negative_prompt
    if style is not None and prompt:
        prompt, styled_negative = style.apply(prompt, negative)
        # A style's own negative is a suggestion: a model that takes none goes without it.
        negative = styled_negative if takes_negative else negative
    if negative and not takes_negative:
        raise InvalidRecipe(
            "negative_prompt",
            f"{family.label} models take no negative prompt; {entry.id} is guidance-distilled, so say "
            "what you want in the prompt instead (e.g. `clear sky` rather than `--no clouds`).",
        )
    return Recipe(
        model=entry.id,
        family=entry.family,
        prompt=prompt,
        negative_prompt=negative,
        style=style.name if style else None,
        seed=draft.seed if draft.seed is not None else random_seed % (MAX_SEED + 1),
        steps=draft.steps if draft.steps is not None else entry.default_steps,
        guidance=draft.guidance if draft.guidance is not None else entry.default_guidance,
        width=width,
        height=height,
        batch=draft.batch if draft.batch is not None else 1,
        aspect=aspect,
        sampler=draft.sampler or entry.default_sampler,
        init_image=init_image,
        # Strength means how far from an init image; without one it means nothing, so the recipe
        # text of an img2img, variation or inpaint image pastes into /imagine as a fresh image.
        strength=(draft.strength or DEFAULT_STRENGTH) if init_image else None,
        loras=draft.loras or (),  # the Forge checks they exist for this person (Models.adapters_for)
        tile=bool(draft.tile),
        chaos=draft.chaos if draft.chaos is not None else 0,
        references=references,
        control=control,
    )
