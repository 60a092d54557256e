"""API deliveries into Discord: from the API promising a thread a result to the bot posting it.

The real bot process runs against the fake Discord of the test suite, and the real REST API
(`atelier api`) beside it, with real Redis and no worker (the jobs only wait in the queue: what
is measured ends with the bot's status message, long before any image). One /imagine opens a
project thread of alice's; then ``--runs`` times, one after another with uneven gaps, an HTTP
POST sends a generation to that thread, and two times are taken:

* promised: this process subscribes to the studio's delivery-notice channel, as the bot does,
  and stamps each notice as it arrives (the API publishes it once the promise is recorded);
* posted: the fake Discord stamps the bot's status message as it receives it.

Notice path: posted - promised, what the bot does now. Poll baseline: what the 2 s SQLite poll
the notice replaced would have taken. A replica of that loop runs in this process against the
same database (sleep 2 s, read the promises) and stamps when it first sees each one; its
figure is (first seen - promised) + the notice path's own time to post, measured in the same run.

    .venv/bin/python -m bench.delivery_notice --runs 20
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/delivery_notice.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import random
import signal
import sqlite3
import subprocess
import time
from typing import Any

import httpx
from arq.connections import create_pool

from bench._figures import (
    STATS_HEADERS,
    check_runs,
    load_line,
    machine_info,
    parser,
    summarize,
    table,
    write_json,
)
from bench._harness import Lab, Lane, entry
from bench.discord_latency import start_bot
from bench.redis_drill import api_ready, start_api
from studio.apikeys import ApiKeys
from studio.entities import Requester
from studio.notices import DeliveryNotice, DeliveryNotices
from studio.queue import redis_settings
from studio.store import Store
from tests.fake_discord import FakeDiscord, MessageRecord
from tests.integration.own_redis import free_port

OLD_POLL_S = 2.0  # the loop the notices replaced (bot/exts/apikey/_threads.py before issue 11)
TARGET_S = 0.2
PROMISES = (
    "SELECT d.generation_id FROM api_generations AS a JOIN deliveries AS d "
    "ON d.generation_id = a.generation_id"
)


async def old_poll(database: Path, first_seen: dict[str, float]) -> None:
    """The replaced loop's timing: every 2 s a read of the promises; stamps each one's first sighting."""
    while True:
        await asyncio.sleep(OLD_POLL_S)
        with sqlite3.connect(database) as db:
            rows = db.execute(PROMISES).fetchall()
        now = time.time()
        for (generation_id,) in rows:
            first_seen.setdefault(str(generation_id), now)


def status_of(fake: FakeDiscord, thread_id: int, generation_id: str) -> MessageRecord | None:
    marker = f":{generation_id}"
    for message in fake.bot_messages(thread_id):
        for row in message.components:
            if any(marker in str(c.get("custom_id", "")) for c in row.get("components", [])):
                return message
    return None


async def project_thread(fake: FakeDiscord) -> int:
    """A project thread of alice's, opened by /imagine (its job waits: there is no worker)."""
    before = set(fake.threads)
    await (await fake.slash("imagine", {"prompt": "a harbour at noon"})).wait_response()
    thread: int = await fake.wait_for(lambda: next((t for t in fake.threads if t not in before), None), 30)
    return thread


async def mint_key(lane: Lane, fake: FakeDiscord) -> str:
    alice = Requester(id=f"discord:{fake.users['alice']}", name="Alice", server=str(fake.guild_id))
    async with Store(lane.settings.database_path) as store:
        return (await ApiKeys(lane.settings, store).mint(alice, "bench")).token


async def measure(lane: Lane, runs: int, seed: int) -> dict[str, Any]:
    fake = FakeDiscord()
    await fake.start()
    port = free_port()
    api = start_api(lane, port)
    bot = start_bot(lane, fake)
    promised: dict[str, float] = {}
    first_polled: dict[str, float] = {}
    redis = await create_pool(redis_settings(lane.settings.redis_url))
    subscribed = asyncio.Event()

    async def on_notice(notice: DeliveryNotice) -> None:
        promised.setdefault(notice.generation_id, time.time())

    async def on_subscribed() -> None:
        subscribed.set()

    listening = asyncio.create_task(
        DeliveryNotices(redis, lane.settings.queue_prefix).listen(on_notice, on_subscribed)
    )
    polling: asyncio.Task[None] | None = None
    try:
        await api_ready(f"http://127.0.0.1:{port}", api)
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        await asyncio.wait_for(subscribed.wait(), 30)
        thread_id = await project_thread(fake)
        token = await mint_key(lane, fake)
        polling = asyncio.create_task(old_poll(lane.settings.database_path, first_polled))
        notice_s: list[float] = []
        poll_s: list[float] = []
        gaps = random.Random(seed)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            for number in range(1, runs + 1):
                answer = await http.post(
                    "/v1/generations",
                    json={"prompt": f"the harbour, take {number}", "discord_thread_id": str(thread_id)},
                )
                if answer.status_code != 202:
                    raise RuntimeError(f"the API refused: {answer.status_code} {answer.text}")
                generation_id = str(answer.json()["id"])
                status = await fake.wait_for(lambda g=generation_id: status_of(fake, thread_id, g), 15)
                await fake.wait_for(lambda g=generation_id: g in promised, 5)
                await fake.wait_for(lambda g=generation_id: g in first_polled, OLD_POLL_S * 3)
                posted = status.created_at - promised[generation_id]
                notice_s.append(posted)
                poll_s.append(first_polled[generation_id] - promised[generation_id] + posted)
                print(f"  delivery {number}/{runs}: {posted * 1000:.0f} ms", file=sys.stderr)
                await asyncio.sleep(gaps.uniform(0.1, 0.9))  # uneven: the poll's phase varies
        return {"notice_s": notice_s, "poll_s": poll_s}
    finally:
        for task in (listening, polling):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (listening, polling) if t is not None), return_exceptions=True)
        await redis.aclose()
        for process in (api, bot):
            stop(process)
        await fake.stop()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    p = parser("From the API promising a Discord thread a result to the bot posting it.", default_runs=20)
    p.add_argument("--seed", type=int, default=11, help="seed of the gaps between deliveries")
    args = p.parse_args(argv)
    check_runs(p, args.runs)
    print(machine_info(args))
    with Lab("delivery-notice", args.redis_url, keep=args.keep) as lab:
        lane = lab.lane(
            "notice", max_jobs_per_user=args.runs + 5, api_rate_per_minute=6000.0, api_rate_burst=1000
        )
        figures = asyncio.run(measure(lane, args.runs, args.seed))
    notice, poll = summarize(figures["notice_s"]), summarize(figures["poll_s"])
    print(f"\nPromised by the API -> the bot's status message posted ({args.runs} deliveries, ms)\n")
    print(
        table(
            STATS_HEADERS,
            [notice.row("Redis notice (now)"), poll.row(f"{OLD_POLL_S:g} s SQLite poll (before)")],
        )
    )
    within = notice.max < TARGET_S
    print(
        f"\nnotice path: max {notice.max * 1000:.0f} ms, "
        f"{'within' if within else 'NOT within'} the {TARGET_S * 1000:.0f} ms target"
    )
    write_json(args.json, {"samples": figures, "notice": vars(notice), "poll": vars(poll)})
    print(load_line())
    return 0 if within else 1


if __name__ == "__main__":
    entry(main)
