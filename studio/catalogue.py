"""The model catalogue (config/models.toml): which base models exist and where their weights are."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from studio.checkpoints import PICKLE_SUFFIXES, CheckpointError, inspect_checkpoint, pickle_sentence
from studio.controlnets import ControlNetEntry, load_controlnets
from studio.errors import CatalogueError, UnknownModel
from studio.families import FAMILIES, Family, FamilyName
from studio.ip_adapters import IPAdapterConfig, load_ip_adapters
from studio.jobs import ModelRef, UpscalerRef
from studio.tomlfile import HUB_ID, entry, read_toml, table, transformers_source

_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


SourceKind = Literal["folder", "file", "hub"]


class ModelEntry(BaseModel):
    """One base model. ``source`` is an absolute local folder (diffusers format), an absolute
    single ``.safetensors`` checkpoint (A1111/Civitai style) or a hub id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    family: FamilyName
    source: str
    description: str = Field(min_length=1, max_length=200)
    tags: tuple[str, ...] = ()
    steps: int = Field(default=0, ge=0, le=150)  # 0: the family's default
    guidance: float = Field(default=-1.0, le=30)  # negative: the family's default
    size: int = Field(default=0, ge=0, le=2048)  # native square side; 0: the family's
    variant: str | None = None  # e.g. "fp16" weight files
    # Per-model settings (all optional).
    scheduler: str | None = None  # the default sampler (a recipe name, e.g. "euler_a")
    clip_skip: int = Field(default=0, ge=0, le=4)  # 0/1: none; 2: skip CLIP's last layer (A1111)
    vae: str | None = None  # a VAE override: a diffusers folder or one .safetensors file
    # A single-file checkpoint's missing parts (configs, tokenizers, Flux's text encoders) come
    # from this diffusers folder or hub id in the local cache; never downloaded at run time.
    config: str | None = None
    true_cfg: float = Field(default=0.0, ge=0, le=30)  # Flux: >1 applies a negative prompt with true CFG
    max_tokens: int = Field(default=0, ge=0, le=512)  # T5 prompt tokens (Flux schnell: 256); 0: family's
    # Memory switches for big models on GPU workers.
    cpu_offload: bool = False  # enable_model_cpu_offload: only the running component on the GPU
    vae_tiling: bool = False  # decode (and encode) in tiles: big images in little memory
    attention: str | None = None  # an attention backend diffusers knows, e.g. "flash", "sage"

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _MODEL_ID.match(value):
            raise ValueError("must be 1-64 lowercase letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _scheduler_of_its_family(self) -> ModelEntry:
        samplers = self.family_spec.samplers
        if self.scheduler is not None and self.scheduler not in samplers:
            raise ValueError(
                f"scheduler `{self.scheduler}` is not a sampler of {self.family_spec.label} models; "
                f"use {' or '.join(samplers)}"
            )
        return self

    @property
    def family_spec(self) -> Family:
        return FAMILIES[self.family]

    @property
    def default_steps(self) -> int:
        return self.steps or self.family_spec.default_steps

    @property
    def default_guidance(self) -> float:
        return self.guidance if self.guidance >= 0 else self.family_spec.default_guidance

    @property
    def default_sampler(self) -> str:
        return self.scheduler or self.family_spec.default_sampler

    @property
    def takes_negative_prompt(self) -> bool:
        """Guidance-distilled models (Flux) take one only when the entry sets true CFG."""
        return self.family_spec.negative_prompt or self.true_cfg > 1

    @property
    def native_size(self) -> int:
        return self.size or self.family_spec.native

    @property
    def is_local(self) -> bool:
        return self.source.startswith("/")

    @property
    def source_kind(self) -> SourceKind:
        if not self.is_local:
            return "hub"
        return "file" if self.source.endswith(".safetensors") else "folder"

    def ref(self) -> ModelRef:
        """What a worker loads: the entry's weights and its loading switches."""
        return ModelRef(
            id=self.id,
            family=self.family,
            source=self.source,
            variant=self.variant,
            kind=self.source_kind,
            config=self.config,
            vae=self.vae,
            clip_skip=self.clip_skip,
            true_cfg=self.true_cfg,
            max_tokens=self.max_tokens,
            cpu_offload=self.cpu_offload,
            vae_tiling=self.vae_tiling,
            attention=self.attention,
        )


class SafetyConfig(BaseModel):
    """``[safety]``: the image classifier workers run on every generated image (content policy).

    ``source``: a transformers image-classification folder or a hub id in the local cache (never
    downloaded at run time). An image is flagged when a ``flagged_labels`` label scores at least
    ``threshold`` (above 1: never)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    flagged_labels: tuple[str, ...] = Field(default=("nsfw",), min_length=1)
    threshold: float = Field(default=0.8, ge=0)


class Catalogue:
    def __init__(
        self,
        entries: dict[str, ModelEntry],
        default: str,
        path: str = "<memory>",
        upscaler: UpscalerRef | None = None,
        safety: SafetyConfig | None = None,
        ip_adapters: dict[str, IPAdapterConfig] | None = None,
        controlnets: dict[tuple[str, str], ControlNetEntry] | None = None,
    ) -> None:
        self.entries = entries
        self.controlnets = controlnets or {}  # (family, mode) -> its ControlNet ([controlnets.<f>.<m>])
        self.ip_adapters = ip_adapters or {}  # family -> its IP-Adapter ([ip_adapter.<family>])
        self.default = default
        self.path = path
        self.upscaler = upscaler  # None: upscales resample and sharpen instead
        self.safety = safety  # None: images are not classified (nothing is flagged)

    def get(self, model_id: str | None) -> ModelEntry:
        key = (model_id or self.default).strip().lower()
        try:
            return self.entries[key]
        except KeyError:
            raise UnknownModel(model_id or "", sorted(self.entries)) from None

    def __iter__(self) -> Any:
        return iter(self.entries.values())


def _resolve_source(raw: str, base: Path, path: str, entry: str) -> str:
    """Local paths become absolute and must exist; hub ids pass through unchanged."""
    expanded = Path(raw).expanduser()
    candidate = expanded if expanded.is_absolute() else base / expanded
    looks_local = raw.startswith((".", "/", "~")) or candidate.exists() or not HUB_ID.match(raw)
    if not looks_local:
        return raw
    if candidate.is_file():  # one A1111/Civitai checkpoint: .safetensors only, never a pickle
        if candidate.suffix.lower() in PICKLE_SUFFIXES:
            raise CatalogueError(path, pickle_sentence(candidate), entry, "source")
        if candidate.suffix != ".safetensors":
            raise CatalogueError(
                path, f"source '{raw}' is a file but not a .safetensors checkpoint", entry, "source"
            )
        return str(candidate.resolve())
    if not candidate.is_dir():
        raise CatalogueError(
            path, f"source '{raw}' points nowhere ({candidate} is not a folder)", entry, "source"
        )
    if not (candidate / "model_index.json").is_file():
        raise CatalogueError(
            path, f"source '{raw}' is not a diffusers model folder (no model_index.json)", entry, "source"
        )
    return str(candidate.resolve())


def _resolve_config(raw: str, base: Path, path: str, entry: str) -> str:
    """A single file's `config`: a local diffusers folder (made absolute) or a hub id."""
    expanded = Path(raw).expanduser()
    candidate = expanded if expanded.is_absolute() else base / expanded
    if not raw.startswith((".", "/", "~")) and not candidate.exists() and HUB_ID.match(raw):
        return raw
    if not (candidate / "model_index.json").is_file():
        raise CatalogueError(
            path,
            f"config '{raw}' is not a diffusers model folder (no model_index.json at {candidate})",
            entry,
            "config",
        )
    return str(candidate.resolve())


def _resolve_vae(raw: str, base: Path, path: str, entry: str) -> str:
    """A VAE override: a local VAE folder or .safetensors file (made absolute), or a hub id."""
    expanded = Path(raw).expanduser()
    candidate = expanded if expanded.is_absolute() else base / expanded
    if not raw.startswith((".", "/", "~")) and not candidate.exists() and HUB_ID.match(raw):
        return raw
    one_file = candidate.is_file() and candidate.suffix == ".safetensors"
    if not (one_file or (candidate / "config.json").is_file()):
        why = f"vae '{raw}' is neither a VAE folder (with config.json) nor a .safetensors file"
        raise CatalogueError(path, why, entry, "vae")
    return str(candidate.resolve())


def _check_single_file(model: ModelEntry, path: str) -> None:
    """A single file's family comes from its tensor names; parts it lacks need a `config`."""
    try:
        found = inspect_checkpoint(Path(model.source))
    except CheckpointError as error:
        raise CatalogueError(path, str(error), model.id, "source") from None
    if found.family != model.family:
        raise CatalogueError(
            path,
            f"{Path(model.source).name} is a checkpoint of the {FAMILIES[found.family].label} family, not "
            f'{model.family_spec.label}; set family = "{found.family}"',
            model.id,
            "family",
        )
    if found.missing and model.config is None:
        raise CatalogueError(
            path,
            f"{Path(model.source).name} has no {', '.join(found.missing)}; set `config` to a diffusers "
            "folder (or a hub id in the local cache) of the same model to take them from",
            model.id,
            "config",
        )


def load_entry(model_id: str, found: object, file: Path) -> ModelEntry:
    """One ``[models.<id>]`` table of ``file``, checked (``atelier models check`` takes them one by one)."""
    where = str(file)
    raw = table(found, where, model_id, "model")
    if "source" in raw and isinstance(raw["source"], str):
        raw = {**raw, "source": _resolve_source(raw["source"], file.parent, where, model_id)}
    if isinstance(raw.get("config"), str):
        raw = {**raw, "config": _resolve_config(raw["config"], file.parent, where, model_id)}
    if isinstance(raw.get("vae"), str):
        raw = {**raw, "vae": _resolve_vae(raw["vae"], file.parent, where, model_id)}
    model = entry(ModelEntry, raw, where, model_id, "model", id=model_id)
    if model.source_kind == "file":
        _check_single_file(model, where)
    return model


def load_catalogue(path: str | Path) -> Catalogue:
    file = Path(path)
    where = str(file)
    data = read_toml(file)
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise CatalogueError(where, "no [models.<id>] tables found")
    entries: dict[str, ModelEntry] = {}
    for model_id, found in models.items():
        model = load_entry(model_id, found, file)
        entries[model.id] = model
    default = data.get("default_model", next(iter(entries)))
    if default not in entries:
        raise CatalogueError(where, f"default_model '{default}' is not one of the [models] entries")
    upscaler = _upscaler(data.get("upscaler"), file.parent, where)
    ip_adapters = load_ip_adapters(data.get("ip_adapter"), file.parent, where)
    safety = _safety(data.get("safety"), file.parent, where)
    controlnets = load_controlnets(data.get("controlnets"), file.parent, where)
    return Catalogue(entries, default, where, upscaler, safety, ip_adapters, controlnets)


def _safety(raw: object, base: Path, where: str) -> SafetyConfig | None:
    """``[safety]``: a transformers image classifier, a local folder (made absolute) or a hub id."""
    if raw is None:
        return None
    found = transformers_source(table(raw, where, "safety", "safety"), base, where, "safety")
    return entry(SafetyConfig, found, where, "safety", "safety")


def _upscaler(raw: object, base: Path, where: str) -> UpscalerRef | None:
    """``[upscaler]``: an ESRGAN-family model file (spandrel) or a diffusers upscale pipeline."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise CatalogueError(where, "must be a table", "upscaler", kind="upscaler")
    kind, source, scale = raw.get("kind"), raw.get("source"), raw.get("scale", 4)
    if kind not in ("spandrel", "diffusers"):
        raise CatalogueError(where, "kind must be `spandrel` or `diffusers`", "upscaler", "kind", "upscaler")
    if not isinstance(source, str) or not source:
        raise CatalogueError(where, "needs a source (a file or folder)", "upscaler", "source", "upscaler")
    if not isinstance(scale, int) or scale not in (1, 2, 3, 4, 8):
        raise CatalogueError(where, "scale must be 1, 2, 3, 4 or 8", "upscaler", "scale", "upscaler")
    path = Path(source).expanduser()
    path = path if path.is_absolute() else base / path
    if kind == "spandrel":
        if not path.is_file():
            raise CatalogueError(
                where, f"source '{source}' is not a file ({path})", "upscaler", "source", "upscaler"
            )
        source = str(path.resolve())
    elif source.startswith((".", "/", "~")) or path.exists():
        source = _resolve_source(source, base, where, "upscaler")
    return UpscalerRef(id=str(raw.get("id", path.stem)), kind=kind, source=source, scale=scale)
