"""``[controlnets.<family>.<mode>]`` of the model catalogue: the ControlNet behind each control mode.

```toml
[controlnets.sd15.canny]
source = "lllyasviel/control_v11p_sd15_canny"   # a hub id in the local cache, or a local folder
[controlnets.sdxl.depth]
source = "/models/controlnet-depth-sdxl-1.0"
annotator = "/models/dpt-hybrid-midas"           # depth and pose also need their annotator
```

``source`` is a diffusers ControlNet folder (with ``config.json``), relative to the catalogue file,
or a hub id read from the local Hugging Face cache (never downloaded at run time). Canny,
scribble and line-art maps are computed without weights on the post worker
(gpu_worker.control_map); depth and pose maps need an ``annotator`` model. A mode a family has no
table for is refused in one sentence before anything is queued.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from studio.errors import CatalogueError
from studio.families import FAMILIES
from studio.tomlfile import HUB_ID, entry, table

# The families whose ControlNet pipelines gpu_worker.controlnet builds (from_pipe of the base).
CONTROLNET_FAMILIES = ("sd15", "sdxl")
ANNOTATED_MODES = ("depth", "pose")  # their maps come from an annotator model, not from pixels alone


class ControlNetEntry(BaseModel):
    """One family's ControlNet for one mode."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str
    mode: str
    source: str
    variant: str | None = None
    annotator: str | None = None  # depth/pose: the model that makes the map from a picture

    @property
    def ready(self) -> bool:
        """Whether its maps can be made: an annotated mode needs its annotator."""
        return self.mode not in ANNOTATED_MODES or self.annotator is not None


def _resolve(raw: object, base: Path, where: str, name: str, field: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise CatalogueError(where, "must be a local folder or a hub id", name, field, kind="controlnet")
    expanded = Path(raw).expanduser()
    candidate = expanded if expanded.is_absolute() else base / expanded
    if not raw.startswith((".", "/", "~")) and not candidate.exists() and HUB_ID.match(raw):
        return raw
    if not (candidate / "config.json").is_file():
        why = f"'{raw}' is not a model folder (no config.json at {candidate})"
        raise CatalogueError(where, why, name, field, kind="controlnet")
    return str(candidate.resolve())


def load_controlnets(raw: object, base: Path, where: str) -> dict[tuple[str, str], ControlNetEntry]:
    """The ``[controlnets.<family>.<mode>]`` tables of a catalogue file, checked; paths made absolute."""
    from studio.recipe import CONTROL_MODES  # studio.recipe imports the catalogue, which imports us

    if raw is None:
        return {}
    found: dict[tuple[str, str], ControlNetEntry] = {}
    for family, modes in table(raw, where, "controlnets", "controlnets").items():
        if family not in FAMILIES:
            why = f"unknown family; known: {', '.join(FAMILIES)}"
            raise CatalogueError(where, why, family, kind="controlnet")
        if family not in CONTROLNET_FAMILIES:
            why = f"ControlNets are supported for {' and '.join(CONTROLNET_FAMILIES)} models only"
            raise CatalogueError(where, why, family, kind="controlnet")
        for mode, value in table(modes, where, family, "controlnet").items():
            name = f"{family}.{mode}"
            if mode not in CONTROL_MODES:
                why = f"unknown control mode; use {', '.join(CONTROL_MODES)}"
                raise CatalogueError(where, why, name, kind="controlnet")
            fields = dict(table(value, where, name, "controlnet"))
            for field in ("source", "annotator"):
                if field in fields or field == "source":
                    fields[field] = _resolve(fields.get(field), base, where, name, field)
            found[(family, mode)] = entry(
                ControlNetEntry, fields, where, name, "controlnet", family=family, mode=mode
            )
    return found
