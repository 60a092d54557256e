"""`atelier models list | make-tiny DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.catalogue import load_catalogue
from studio.settings import load_settings


def models(args: argparse.Namespace) -> int:
    if args.models_command == "make-tiny":
        from gpu_worker.tiny import make_tiny

        for name, folder in make_tiny(Path(args.dir)).items():
            print(f"{name}: {folder}")
        return 0
    catalogue = load_catalogue(load_settings().models_file)
    for entry in catalogue:
        default = " (default)" if entry.id == catalogue.default else ""
        tags = f" [{', '.join(entry.tags)}]" if entry.tags else ""
        print(f"{entry.id}{default}: {entry.family}, {entry.description}{tags}")
    return 0
