"""``[ip_adapter.<family>]`` of the model catalogue: the IP-Adapter a family's references go through.

Each source is a local path (relative to the catalogue file) or a hub path
``owner/repo/path/in/repo`` read from the local Hugging Face cache (never downloaded at run
time). ``image_encoder`` is a CLIP vision model folder (``CLIPVisionModelWithProjection``);
``style`` (``--sref``) and ``character`` (``--cref``) are IP-Adapter ``.safetensors`` files that
take that encoder's embeddings (e.g. h94/IP-Adapter's ``ip-adapter_sd15`` and
``ip-adapter-plus-face_sd15``; for Flux, XLabs-AI/flux-ip-adapter's ``ip_adapter.safetensors``
with ``openai/clip-vit-large-patch14`` as the encoder: a hub encoder may be a whole repo,
``owner/repo``). A family without a table takes no reference images.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from studio.errors import CatalogueError
from studio.families import FAMILIES
from studio.tomlfile import entry, table

# The families whose pipelines take IP-Adapter images the way gpu_worker.ip_adapter feeds them.
IP_ADAPTER_FAMILIES = ("sd15", "sdxl", "flux")
_HUB_PATH = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+/[\w./-]+$")
_HUB_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # a whole repo (an image encoder's)


class IPAdapterConfig(BaseModel):
    """One family's adapters: a style one, optionally a character (face) one, one image encoder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str
    image_encoder: str
    style: str
    character: str | None = None

    def source(self, kind: str) -> str | None:
        return self.style if kind == "style" else self.character


def is_hub_path(source: str) -> bool:
    return not source.startswith("/") and bool(_HUB_PATH.match(source) or _HUB_REPO.match(source))


def hub_parts(source: str) -> tuple[str, str]:
    """``owner/repo/rest`` as (``owner/repo``, ``rest``); ``owner/repo`` as (``owner/repo``, "")."""
    owner, repo, *rest = source.split("/", 2)
    return f"{owner}/{repo}", rest[0] if rest else ""


def _resolve(raw: object, base: Path, where: str, family: str, field: str, folder: bool) -> str:
    if not isinstance(raw, str) or not raw:
        raise CatalogueError(where, "must be a path or hub path", family, field, kind="ip_adapter")
    expanded = Path(raw).expanduser()
    candidate = expanded if expanded.is_absolute() else base / expanded
    hub = _HUB_PATH.match(raw) or (folder and _HUB_REPO.match(raw))
    if not raw.startswith((".", "/", "~")) and not candidate.exists() and hub:
        return raw
    if folder and not (candidate / "config.json").is_file():
        why = f"'{raw}' is not an image encoder folder (no config.json at {candidate})"
        raise CatalogueError(where, why, family, field, kind="ip_adapter")
    if not folder and not (candidate.is_file() and candidate.suffix == ".safetensors"):
        why = f"'{raw}' is not an IP-Adapter .safetensors file ({candidate})"
        raise CatalogueError(where, why, family, field, kind="ip_adapter")
    return str(candidate.resolve())


def load_ip_adapters(raw: object, base: Path, where: str) -> dict[str, IPAdapterConfig]:
    """The ``[ip_adapter.<family>]`` tables of a catalogue file, checked; paths made absolute."""
    if raw is None:
        return {}
    found = table(raw, where, "ip_adapter", "ip_adapter")
    adapters: dict[str, IPAdapterConfig] = {}
    for family, value in found.items():
        fields = dict(table(value, where, family, "ip_adapter"))
        if family not in FAMILIES:
            raise CatalogueError(
                where, f"unknown family; known: {', '.join(FAMILIES)}", family, kind="ip_adapter"
            )
        if family not in IP_ADAPTER_FAMILIES:
            why = f"reference images are supported for {', '.join(IP_ADAPTER_FAMILIES)} models only"
            raise CatalogueError(where, why, family, kind="ip_adapter")
        for field in ("image_encoder", "style", "character"):
            if field in fields:
                fields[field] = _resolve(fields[field], base, where, family, field, field == "image_encoder")
        adapters[family] = entry(IPAdapterConfig, fields, where, family, "ip_adapter", family=family)
    return adapters
