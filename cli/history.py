"""`atelier history`: recent generations with status and timings."""

from __future__ import annotations

import argparse
import time

from cli.imagine import requester
from studio.app import open_studio
from studio.entities import Generation
from studio.settings import load_settings


def _seconds(start: float | None, end: float | None) -> str:
    return f"{end - start:6.2f}s" if start is not None and end is not None else "      -"


def _load(seconds: float | None) -> str:
    return f" +load {seconds:.2f}s" if seconds else ""


def format_row(g: Generation) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(g.created_at))
    r = g.recipe
    prompt = r.prompt if len(r.prompt) <= 40 else r.prompt[:39] + "…"
    line = (
        f"{g.id[:12]}  {when}  {g.status:<9}  total {_seconds(g.created_at, g.finished_at)}  "
        f"worker {g.worker_seconds or 0:6.2f}s{_load(g.load_seconds)}  tries {g.attempts}  "
        f"{r.model} {r.batch}x{r.width}x{r.height} seed {r.seed}  {prompt}"
    )
    if g.error:
        line += f"  ({g.error})"
    return line


async def history(args: argparse.Namespace) -> int:
    async with open_studio(load_settings()) as studio:
        await studio.results.collect()  # record jobs that finished while nobody was waiting
        rows = await studio.store.list_generations(None if args.all_users else requester().id, args.limit)
    if not rows:
        print("no generations yet")
    for row in rows:
        print(format_row(row))
    return 0
