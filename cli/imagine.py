"""`atelier imagine`: enqueue, show progress, write the images and the grid."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import sys
from pathlib import Path

from cli.progress import ProgressBar
from studio import jobs
from studio.app import open_studio
from studio.entities import Requester
from studio.errors import StudioError
from studio.outage import REDIS_DOWN
from studio.permutations import has_permutations
from studio.recipe import Draft
from studio.settings import load_settings

OUTAGE_LIMIT_S = 300.0  # how long a waiting `imagine` rides out a Redis outage before it gives up


def requester() -> Requester:
    name = getpass.getuser()
    return Requester(id=f"cli:{name}", name=name)


async def imagine(args: argparse.Namespace) -> int:
    settings = load_settings()
    init = None
    if args.init:
        try:
            init = Path(args.init).read_bytes()
        except OSError as exc:
            raise StudioError(f"Cannot read the init image {args.init}: {exc.strerror}.") from None
    if has_permutations(args.prompt):
        raise StudioError(
            "`atelier imagine` makes one generation: run it once per prompt, or send the `{a, b}` "
            "prompt through /imagine or the API, which expand it."
        )
    async with open_studio(settings) as studio:
        generation = await studio.generations.imagine(
            requester(), args.prompt, Draft.from_options(vars(args)), args.project, init
        )
        recipe = generation.recipe
        print(
            f"generation {generation.id}: {recipe.batch}x {recipe.width}x{recipe.height} on {recipe.model}, "
            f"seed {recipe.seed}, {recipe.steps} steps, cfg {recipe.guidance:g}",
            file=sys.stderr,
        )
        try:
            live = await studio.queue.live_workers()
        except REDIS_DOWN:  # Redis went away just now: no note; the wait below rides it out
            live = dict.fromkeys(jobs.QUEUES, 1)
        needed = ("inference", "post") if recipe.batch > 1 else ("inference",)  # post: the grid
        for kind in needed:
            if not live[kind]:
                print(
                    f"note: no {kind} worker is running; the job waits until one starts "
                    f"(atelier worker --queue {kind})",
                    file=sys.stderr,
                )
        bar = ProgressBar()
        with contextlib.suppress(*REDIS_DOWN):
            bar.queued(await studio.queue.position(jobs.INFERENCE, generation.id))
        try:
            # Waits out a Redis outage; a very long one ends with one line (QueueUnavailable).
            finished = await studio.results.follow(generation.id, bar, outage_limit=OUTAGE_LIMIT_S)
        except asyncio.CancelledError:  # Ctrl-C: stop the job too, rather than leave it running
            with contextlib.suppress(*REDIS_DOWN):
                await studio.generations.cancel(requester(), generation.id)
            print(f"\ncancelling generation {generation.id}", file=sys.stderr)
            raise
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = generation.id[:8]
        for image in finished.images:
            path = out / f"{stem}-{image.index + 1}-seed{image.seed}.png"
            path.write_bytes(studio.artifacts.get(image.artifact))
            print(path)
        if finished.generation.grid_artifact and len(finished.images) > 1:
            grid = out / f"{stem}-grid.png"
            grid.write_bytes(studio.artifacts.get(finished.generation.grid_artifact))
            print(grid)
        took = (finished.generation.finished_at or 0) - finished.generation.created_at
        print(
            f"done in {took:.2f}s (worker {finished.generation.worker_seconds or 0:.2f}s, "
            f"attempt {finished.generation.attempts})",
            file=sys.stderr,
        )
    return 0
