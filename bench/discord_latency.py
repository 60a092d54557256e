"""Discord front-end latency: acknowledgement under load, and /imagine end to end minus the worker.

The real bot process runs against the fake Discord of the test suite (aiohttp REST + gateway on
localhost), with real Redis and real workers on the tiny model, all on this machine:

* acknowledgement: 50 /imagine dispatched at once (INTERACTION_CREATE sent) while the inference
  worker is busy generating; latency = dispatch -> the bot's first callback received by the
  fake (the 3 s rule). p50 / p99 / max over all of them, ``--runs`` rounds.
* end to end: one /imagine at a time on an idle queue; dispatch -> the status message edited
  into the result, minus the worker's own pipeline time (from the studio database).

    .venv/bin/python -m bench.discord_latency --runs 3
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/discord_latency.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import math
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from typing import Any

from bench._figures import (
    STATS_HEADERS,
    check_runs,
    load_line,
    machine_info,
    parser,
    summarize,
    table,
    worker_overrides,
    write_json,
)
from bench._harness import REPO, Lab, Lane, entry, wait_ready
from studio.queue import JobQueue
from tests.fake_discord import FakeDiscord

CONCURRENT = 50


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def start_bot(lane: Lane, fake: FakeDiscord) -> subprocess.Popen[bytes]:
    env = {
        **lane.env,
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISCORD_GUILD_IDS": str(fake.guild_id),
        "DISCORD_GUILD_READY_TIMEOUT": "0.05",
    }
    lane.logs.mkdir(parents=True, exist_ok=True)
    with (lane.logs / "bot.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )


def worker_seconds(lane: Lane, generation_id: str) -> float:
    with sqlite3.connect(lane.settings.database_path) as db:
        row = db.execute("SELECT worker_seconds FROM generations WHERE id = ?", (generation_id,)).fetchone()
    return float(row[0])


async def result_of(fake: FakeDiscord, threads_before: set[int]) -> tuple[str, float]:
    """(generation id, wall time of the result edit) of the /imagine that opened a new thread."""

    def done() -> tuple[str, float] | None:
        for thread in fake.threads.values():
            if thread.id in threads_before:
                continue
            for message in fake.bot_messages(thread.id):
                if message.content.startswith("✅") and message.edits:
                    ids = [
                        c.get("custom_id", "")
                        for row in message.components
                        for c in row.get("components", [])
                    ]
                    generation = next(i.split(":")[2] for i in ids if i.startswith("at:r:"))
                    return generation, message.edits[-1][0]
        return None

    return await fake.wait_for(done, timeout=120)


async def measure(lane: Lane, runs: int) -> dict[str, Any]:
    fake = FakeDiscord()
    await fake.start()
    bot = start_bot(lane, fake)
    try:
        queue = await JobQueue.connect(lane.settings)
        try:
            await wait_ready(queue, lane.workers)
        finally:
            await queue.close()
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)

        # Warm-up: model load, first inference, first grid.
        before = set(fake.threads)
        await (await fake.slash("imagine", {"prompt": "warm up", "batch": 2})).wait_response()
        await result_of(fake, before)

        end_to_end, overhead = [], []
        for _ in range(max(5, runs * 3)):
            before = set(fake.threads)
            started = time.time()
            record = await fake.slash("imagine", {"prompt": "a lighthouse at dusk"})
            await record.wait_response()
            generation, finished = await result_of(fake, before)
            total = finished - started
            end_to_end.append(total)
            overhead.append(total - worker_seconds(lane, generation))
            await asyncio.sleep(0.2)

        acks: list[float] = []
        for run in range(runs):
            # Keep the worker generating while the burst arrives.
            busy = await fake.slash("imagine", {"prompt": "busy --size 256x256", "steps": 60}, user="mod")
            await busy.wait_response()
            await asyncio.sleep(1.0)
            burst = await asyncio.gather(
                *(fake.slash("imagine", {"prompt": f"burst {run}-{n}"}) for n in range(CONCURRENT))
            )
            responses = await asyncio.gather(*(record.wait_response(timeout=10) for record in burst))
            acks += [response.latency for response in responses]
            await fake.wait_for(lambda: not _pending(lane), timeout=300)
        violations = list(fake.violations)
        rate = busiest_second(fake)
    finally:
        bot.send_signal(signal.SIGTERM)
        try:
            bot.wait(timeout=20)
        except subprocess.TimeoutExpired:
            bot.kill()
        await fake.stop()
    return {
        "acks": acks,
        "end_to_end": end_to_end,
        "overhead": overhead,
        "violations": violations,
        "busiest_second": rate,
    }


def busiest_second(fake: FakeDiscord) -> tuple[int, dict[str, int]]:
    """The most REST requests (interaction endpoints excluded) the fake received in any 1 s window,
    and what they were."""
    sent = sorted(
        (t, f"{method} {re.sub(r'[0-9]{5,}', '{id}', path)}")
        for t, method, path, _ in fake.requests
        if not path.startswith(("/interactions/", "/webhooks/"))
    )
    best, best_range, start = 0, (0, 0), 0
    for end, (t, _) in enumerate(sent):
        while t - sent[start][0] > 1.0:
            start += 1
        if end - start + 1 > best:
            best, best_range = end - start + 1, (start, end + 1)
    return best, dict(Counter(route for _, route in sent[best_range[0] : best_range[1]]))


def _pending(lane: Lane) -> bool:
    with sqlite3.connect(lane.settings.database_path) as db:
        row = db.execute("SELECT COUNT(*) FROM generations WHERE status IN ('queued', 'running')").fetchone()
    return bool(row[0])


def main(argv: list[str] | None = None) -> int:
    p = parser("Discord acknowledgement latency under load, and /imagine end to end.", default_runs=3)
    args = p.parse_args(argv)
    check_runs(p, args.runs)
    print(machine_info(args))
    with Lab("discord", args.redis_url, args.keep) as lab:
        lane = lab.lane("discord", max_jobs_per_user=CONCURRENT + 5, **worker_overrides(args))
        lane.start("inference")
        lane.start("post")
        figures = asyncio.run(measure(lane, args.runs))
    acks = figures["acks"]
    title = f"Acknowledgement of {CONCURRENT} concurrent /imagine while a worker generates"
    print(f"\n{title}, {args.runs} rounds (ms)\n")
    print(
        table(
            ["", "p50", "p99", "max", "n"],
            [
                [
                    "INTERACTION_CREATE -> first callback",
                    f"{summarize(acks).median * 1000:.1f}",
                    f"{p99(acks) * 1000:.1f}",
                    f"{max(acks) * 1000:.1f}",
                    str(len(acks)),
                ]
            ],
        )
    )
    print("\n/imagine end to end on an idle queue, 1 image of 64x64, 4 steps (ms)\n")
    print(
        table(
            STATS_HEADERS,
            [
                summarize(figures["end_to_end"]).row("dispatch -> result posted"),
                summarize(figures["overhead"]).row("minus the worker's pipeline time"),
            ],
        )
    )
    busiest, routes = figures["busiest_second"]
    print(f"\nbusiest second: {busiest} REST requests (Discord allows 50): {routes}")
    print(f"Discord rule violations seen by the fake: {len(figures['violations'])}")
    for violation in figures["violations"]:
        print(f"  {violation}")
    write_json(args.json, figures)
    print(load_line())
    return 0 if not figures["violations"] else 1


if __name__ == "__main__":
    entry(main)
