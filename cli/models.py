"""`atelier models list | export NAME | import-lora PATH | make-tiny DIR | add | check`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from studio.app import open_studio
from studio.catalogue import load_catalogue
from studio.entities import Requester
from studio.errors import StudioError
from studio.lora_import import FORMAT_NAMES
from studio.model_listing import summarise
from studio.models import LoraImport
from studio.settings import load_settings

OPERATOR = Requester(id="cli:operator", name="operator", operator=True)


def models(args: argparse.Namespace) -> int:
    if args.models_command == "make-tiny":
        from gpu_worker.tiny import make_tiny

        for name, folder in make_tiny(Path(args.dir)).items():
            print(f"{name}: {folder}")
        return 0
    if args.models_command == "export":
        return asyncio.run(_export(args.name, args.format, Path(args.out)))
    if args.models_command == "import-lora":
        return asyncio.run(_import_lora(args))
    if args.models_command in ("add", "check"):
        from cli import model_entries

        return model_entries.add(args) if args.models_command == "add" else model_entries.check(args)
    catalogue = load_catalogue(load_settings().models_file)
    for summary in summarise(catalogue):  # a model's first listing reads its weights for the hash
        entry = summary.entry
        default = " (default)" if entry.id == catalogue.default else ""
        tags = f" [{', '.join(entry.tags)}]" if entry.tags else ""
        print(f"{entry.id}{default}: {summary.details()} — {entry.description}{tags}")
    return asyncio.run(_list_loras())


async def _list_loras() -> int:
    try:
        async with open_studio(load_settings()) as studio:
            loras = (await studio.models.available(OPERATOR)).loras
    except StudioError as error:  # e.g. Redis is not running: the base models are listed anyway
        print(f"(LoRA models not listed: {error})", file=sys.stderr)
        return 0
    for lora in loras:
        print(
            f"{lora.name} v{lora.version}: LoRA on {lora.base_model}, trigger {lora.trigger}, "
            f"{lora.visibility}, by {lora.owner_id}"
        )
    return 0


async def _export(name: str, fmt: str, out: Path) -> int:
    """Write a LoRA's weights to a file (for the ones too large to attach in Discord)."""
    async with open_studio(load_settings()) as studio:
        try:
            filename, data = await studio.models.export(OPERATOR, name, fmt)
        except StudioError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / filename).write_bytes(data)
    print(out / filename)
    return 0


async def _import_lora(args: argparse.Namespace) -> int:
    """Import a LoRA file as a custom model, for the operator or on a Discord user's behalf."""
    path = Path(args.path)
    operator = Requester(id=OPERATOR.id, name=OPERATOR.name, operator=True, server=args.share)
    try:
        request = LoraImport(
            data=path.read_bytes(),
            name=args.name,
            base_model=args.model,
            filename=path.name,
            trigger=args.trigger,
            visibility="server" if args.share else "private",
            owner_id=f"discord:{args.owner}" if args.owner else None,
        )
        async with open_studio(load_settings()) as studio:
            lora, found = await studio.models.import_lora(operator, request)
    except OSError as error:
        print(f"error: cannot read {path}: {error.strerror}", file=sys.stderr)
        return 1
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    shared = f"shared with server {lora.server}" if lora.visibility == "server" else "private"
    print(
        f"{lora.name} v{lora.version}: {FORMAT_NAMES[found.format]} LoRA for {lora.family} "
        f"on {lora.base_model}, rank {found.rank}, {found.modules} layers, "
        f"trigger {lora.trigger or '(none)'}, {shared}, owner {lora.owner_id}"
    )
    return 0
