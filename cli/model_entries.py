"""`atelier models add` and `atelier models check`: catalogue entries the operator can trust.

``add`` checks the weights (a single .safetensors checkpoint, a diffusers folder or a hub id in
the local Hugging Face cache): the family is detected and must match ``--family``, and the model
loads; only then is a ``[models."<id>"]`` table appended to the catalogue file (its comments
kept). ``check`` goes through every entry and says in one line whether it is usable and why not.
Nothing is ever downloaded.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.catalogue import ModelEntry, load_catalogue, load_entry
from studio.checkpoints import CheckpointError, flux_guidance_embeds, folder_family, inspect_checkpoint
from studio.errors import CatalogueError, StudioError
from studio.families import FAMILIES
from studio.settings import load_settings
from studio.tomlfile import read_toml

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SCHNELL_DEFAULTS: dict[str, Any] = {"steps": 4, "guidance": 0.0, "max_tokens": 256}


class Refused(StudioError):
    """``add`` will not write the entry; the message is one sentence saying why."""


@dataclass
class Found:
    source: str  # what the catalogue will say: an absolute path or a hub id
    family: str
    kind: str  # file, folder or hub
    name: str  # for the default id and description
    defaults: dict[str, Any]


def models_file(args: argparse.Namespace) -> Path:
    return Path(args.models_file) if args.models_file else load_settings().models_file


def add(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never a download
    catalogue = models_file(args)
    try:
        entry = _add(args, catalogue)
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"added {entry.id} ({entry.family}, {entry.source_kind}) to {catalogue}")
    return 0


def _add(args: argparse.Namespace, catalogue: Path) -> ModelEntry:
    found = detect(args.source)
    if args.family and args.family != found.family:
        raise Refused(
            f"{found.name} is a model of the {FAMILIES[found.family].label} family, not "
            f"{FAMILIES[args.family].label}; "
            f"leave out --family or give --family {found.family}."
        )
    existing = catalogue.read_text(encoding="utf-8") if catalogue.is_file() else ""
    taken = set()
    if existing:
        try:
            taken = set(load_catalogue(catalogue).entries)
        except CatalogueError as error:
            raise Refused(f"the catalogue fails to load as it is, so nothing was added: {error}") from None
    model_id = args.id or slug(found.name)
    if model_id in taken:
        raise Refused(f"{catalogue} already has a model `{model_id}`; choose another with --id.")
    fields: dict[str, Any] = {
        "family": found.family,
        "source": found.source,
        "description": args.description or f"{FAMILIES[found.family].label} {found.kind} {found.name}"[:200],
        **found.defaults,
    }
    if args.config:  # a folder as typed here (relative to the current folder), or a hub id
        typed = Path(args.config).expanduser()
        fields["config"] = str(typed.resolve()) if typed.exists() else args.config
    table = toml_table(model_id, fields)
    entry = _checked_entry(model_id, catalogue, existing, table)
    if not args.no_load:
        failure = load_failure(entry)
        if failure:
            raise Refused(f"{found.name} fails to load, so nothing was added: {failure}")
    _append(catalogue, existing, table)
    return entry


def detect(source: str) -> Found:
    """What ``source`` is: its family, kind and catalogue defaults (Refused if unusable)."""
    path = Path(source).expanduser()
    if path.is_file():
        try:
            checkpoint = inspect_checkpoint(path)
        except CheckpointError as error:
            raise Refused(str(error)) from None
        schnell = checkpoint.variant == "flux-schnell"
        defaults = dict(SCHNELL_DEFAULTS) if schnell else {}
        return Found(str(path.resolve()), checkpoint.family, "file", path.stem, defaults)
    if path.is_dir():
        return _folder(path, str(path.resolve()), "folder", path.name)
    if path.is_absolute() or source.startswith((".", "~")) or not _HUB_ID.match(source):
        raise Refused(f"{source} does not exist (neither a file nor a folder here, nor a hub id).")
    return _folder(hub_snapshot(source), source, "hub", source.rsplit("/", 1)[1])


def _folder(folder: Path, source: str, kind: str, name: str) -> Found:
    if not (folder / "model_index.json").is_file():
        raise Refused(f"{source} is not a diffusers model folder (it has no model_index.json).")
    family = folder_family(folder)
    if family is None:
        raise Refused(
            f"{source} is a diffusers pipeline Atelier does not serve (not SD 1.5, SDXL, Flux.1 or SD 3.5)."
        )
    defaults = dict(SCHNELL_DEFAULTS) if family == "flux" and not flux_guidance_embeds(folder) else {}
    return Found(source, family, kind, name, defaults)


def hub_snapshot(repo_id: str) -> Path:
    """The local copy of a hub model in the Hugging Face cache (Refused when there is none)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached: nothing is ever downloaded here
        raise Refused(
            f"{repo_id} is not in this machine's Hugging Face cache; download it once with "
            f"`hf download {repo_id}` (where there is internet)."
        ) from None


def slug(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return cleaned[:64].rstrip("-._") or "model"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's (ASCII-only output)


def toml_table(model_id: str, fields: dict[str, Any]) -> str:
    lines = [f"[models.{json.dumps(model_id)}]"] + [f"{key} = {toml_value(v)}" for key, v in fields.items()]
    return "\n".join(lines) + "\n"


def _joined(existing: str, table: str) -> str:
    if not existing:
        return table
    return existing + ("" if existing.endswith("\n") else "\n") + "\n" + table


def _checked_entry(model_id: str, catalogue: Path, existing: str, table: str) -> ModelEntry:
    """The new entry as the catalogue will read it, checked by a trial load of the whole file."""
    trial = catalogue.with_name(f".{catalogue.name}.adding")
    catalogue.parent.mkdir(parents=True, exist_ok=True)
    trial.write_text(_joined(existing, table), encoding="utf-8")
    try:
        return load_catalogue(trial).get(model_id)
    except CatalogueError as error:
        raise Refused(str(error).replace(str(trial), str(catalogue))) from None
    finally:
        trial.unlink(missing_ok=True)


def _append(catalogue: Path, existing: str, table: str) -> None:
    """Write the new text whole, then swap it in: a crash never leaves half a table."""
    partial = catalogue.with_name(f".{catalogue.name}.partial")
    partial.write_text(_joined(existing, table), encoding="utf-8")
    os.replace(partial, catalogue)


def load_failure(entry: ModelEntry) -> str | None:
    """None if ``entry`` loads through the worker's own loading code; else why not, in one line."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # one line per model, not library chatter
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from gpu_worker.pipelines import ModelLoadError, load_model, pick_device, pick_dtype

    for library in (diffusers_logging, transformers_logging):
        library.disable_progress_bar()
        library.set_verbosity_error()
    settings = load_settings()
    device = pick_device(settings.device)
    try:
        loaded = load_model(entry.ref(), device, pick_dtype(settings.dtype, device))
    except ModelLoadError as error:  # our own sentences, or diffusers' error after "could not load"
        return str(error).removeprefix(f"model {entry.id}: ").strip().splitlines()[0]
    except Exception as error:  # the model's code raised something else: still a load failure
        return _one_line(f"{type(error).__name__}: {error}")
    del loaded
    gc.collect()
    return None


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return first if len(first) <= 300 else first[:297] + "..."


def check(args: argparse.Namespace) -> int:
    """One line per entry: id, ok or FAILED, family, source kind, and why."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    catalogue = models_file(args)
    try:
        tables = read_toml(catalogue).get("models")
    except CatalogueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not isinstance(tables, dict) or not tables:
        print(f"error: {catalogue}: no [models.<id>] tables found", file=sys.stderr)
        return 2
    failed = 0
    for model_id, raw in tables.items():
        family, kind, why = _check_one(model_id, raw, catalogue, load=not args.no_load)
        failed += why is not None
        state = "ok" if why is None else "FAILED"
        print(f"{model_id}: {state}, {family}, {kind}" + (f": {why}" if why else ""))
    return 1 if failed else 0


def _check_one(model_id: str, raw: Any, catalogue: Path, load: bool) -> tuple[str, str, str | None]:
    family = str(raw.get("family", "?")) if isinstance(raw, dict) else "?"
    source = str(raw.get("source", "")) if isinstance(raw, dict) else ""
    kind = "file" if source.endswith(".safetensors") else ("hub" if _HUB_ID.match(source) else "folder")
    try:
        entry = load_entry(model_id, raw, catalogue)
    except CatalogueError as error:
        prefix = f"{catalogue}: model `{model_id}`"
        return family, kind, str(error).removeprefix(prefix).removeprefix(", ").removeprefix(": ")
    kind = entry.source_kind
    if kind != "file":
        try:
            folder = Path(entry.source) if kind == "folder" else hub_snapshot(entry.source)
        except Refused as error:
            return family, kind, f"missing: {error}"
        there = folder_family(folder)
        if there is not None and there != entry.family:
            return (
                family,
                kind,
                (
                    f"family mismatch: the folder holds a pipeline of the {FAMILIES[there].label} family, "
                    f'not {entry.family_spec.label}; set family = "{there}"'
                ),
            )
    if load:
        failure = load_failure(entry)
        if failure:
            return family, kind, f"fails to load: {failure}"
    return family, kind, None
