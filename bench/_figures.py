"""Benchmark figures: the common command line, machine and load lines, tables and statistics."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"


# Command line and output


def parser(description: str, default_runs: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--runs", type=int, default=default_runs, help=f"measured runs (default {default_runs})")
    p.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help=f"Redis to use (default {DEFAULT_REDIS_URL})"
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the raw samples and summaries here")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (worker logs, SQLite)")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        metavar="N",
        help="ATELIER_TORCH_THREADS for the inference workers (default 0: torch's own, one per core); "
        "1 keeps figures sane on a machine that other processes keep busy",
    )
    return p


def worker_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings for every lane that come from the common options."""
    if args.torch_threads < 0:
        raise SystemExit("--torch-threads must be 0 or more")
    return {"torch_threads": args.torch_threads}


def check_runs(p: argparse.ArgumentParser, runs: int, minimum: int = 1) -> None:
    if runs < minimum:
        p.error(f"--runs must be at least {minimum}")


def machine_info(args: argparse.Namespace | None = None) -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{dt.date.today().isoformat()} | {platform.machine()} {os.cpu_count()} cores, load avg {load} | "
        f"Python {platform.python_version()} | torch {version('torch')} | diffusers {version('diffusers')} | "
        f"arq {version('arq')} | redis-py {version('redis')}"
        + ("" if args is None else f" | worker torch threads: {args.torch_threads or 'torch default'}")
    )


def load_line() -> str:
    """The 1/5/15-minute load averages: other processes on the machine skew every figure."""
    return "load average now: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def write_json(path: Path | None, data: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        print(f"raw figures written to {path}")


# Statistics


@dataclass(frozen=True)
class Stats:
    n: int
    median: float
    p90: float
    mean: float
    min: float
    max: float

    def row(self, label: str, scale: float = 1000.0, digits: int = 1) -> list[str]:
        """A table row (milliseconds by default): label, median, p90, min, max, n."""
        f = f"{{:.{digits}f}}"
        return [
            label,
            *(f.format(v * scale) for v in (self.median, self.p90, self.min, self.max)),
            str(self.n),
        ]


STATS_HEADERS = ["", "median", "p90", "min", "max", "n"]


def summarize(samples: Sequence[float]) -> Stats:
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(0.9 * len(ordered)))  # nearest-rank p90
    return Stats(
        n=len(ordered),
        median=statistics.median(ordered),
        p90=ordered[rank - 1],
        mean=statistics.fmean(ordered),
        min=ordered[0],
        max=ordered[-1],
    )
