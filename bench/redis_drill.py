"""Redis drill: redis-server SIGKILLed and restarted from its AOF while jobs run and front ends wait.

A private redis-server (``appendonly yes``, ``appendfsync everysec``, ``noeviction``, as in
docker-compose.yml) serves two inference workers and a post worker (`atelier worker`), the REST
API (`atelier api`) and the Discord bot against the fake Discord of the test suite. Each cycle
submits one generation through each front end (an HTTP POST, an /imagine, and Results.follow in
this process), kills Redis with SIGKILL once the longest of them is generating, keeps it down
for that cycle's outage, and restarts it from its AOF. Then every job must end as done.

Reported: jobs submitted, lost (not done, or done without its images), recorded twice (more
image rows than the batch, or a Discord result posted twice), re-run by a second worker (arq is
at-least-once: allowed, but counted), worker and front-end processes alive afterwards,
tracebacks in their logs, and the time from Redis back to each job done (median/max).

    .venv/bin/python -m bench.redis_drill                       # 10 outages, 1 s to 60 s
    .venv/bin/python -m bench.redis_drill --outages 2,2,2 --no-bot
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/redis_drill.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import re
import signal
import sqlite3
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from bench._figures import (
    STATS_HEADERS,
    load_line,
    machine_info,
    parser,
    summarize,
    table,
    worker_overrides,
    write_json,
)
from bench._harness import REPO, Lab, Lane, entry, wait_ready
from studio import jobs
from studio.apikeys import ApiKeys
from studio.app import Studio, open_studio
from studio.entities import Requester
from studio.errors import StudioError
from studio.queue import JobQueue
from studio.store import Store
from tests.integration.own_redis import OwnRedis, free_port

DEFAULT_OUTAGES = "1,2,3,5,1,2,3,5,20,60"  # seconds down per kill; the last two outlast the job lease
ME = Requester(id="bench:drill", name="drill")
API_OWNER = Requester(id="discord:4242", name="drill-api", server="drill")
LONG = "a stormy sea --steps 40 --size 256x256 --seed {n}"  # generating when Redis dies
SHORT = "a lighthouse --seed {n}"
END_TIMEOUT_S = 300.0


@dataclass
class Cycle:
    down_s: float
    killed_at: float = 0.0  # wall clock
    back_at: float = 0.0
    generations: list[str] = field(default_factory=list)  # unfinished when Redis was killed
    back_to_done: list[float] = field(default_factory=list)


def start_api(lane: Lane, port: int) -> subprocess.Popen[bytes]:
    lane.logs.mkdir(parents=True, exist_ok=True)
    with (lane.logs / "api.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "api"],
            env={**lane.env, "ATELIER_API_PORT": str(port)},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def api_ready(url: str, process: subprocess.Popen[bytes], within: float = 120) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if (await client.get("/openapi.json")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the API did not start; see its log")


async def mint_key(lane: Lane) -> str:
    async with Store(lane.settings.database_path) as store:
        return (await ApiKeys(lane.settings, store).mint(API_OWNER, "drill")).token


def rows(lane: Lane, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(lane.settings.database_path) as db:
        return list(db.execute(sql, args).fetchall())


def unfinished(lane: Lane) -> list[str]:
    return [r[0] for r in rows(lane, "SELECT id FROM generations WHERE status IN ('queued', 'running')")]


async def until(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def drill(lane: Lane, redis: OwnRedis, outages: list[float], with_bot: bool) -> dict[str, Any]:
    port = free_port()
    api = start_api(lane, port)
    fake: Any = None
    bot: subprocess.Popen[bytes] | None = None
    if with_bot:
        from bench.discord_latency import start_bot
        from tests.fake_discord import FakeDiscord

        fake = FakeDiscord()
        await fake.start()
        bot = start_bot(lane, fake)
    cycles: list[Cycle] = []
    following: list[asyncio.Task[Any]] = []
    try:
        queue = await JobQueue.connect(lane.settings)
        try:
            await wait_ready(queue, lane.workers)
        finally:
            await queue.close()
        await api_ready(f"http://127.0.0.1:{port}", api)
        if fake is not None:
            await fake.wait_connected(timeout=60)
            await fake.wait_for(lambda: fake.commands, timeout=30)
        token = await mint_key(lane)
        async with (
            open_studio(lane.settings) as studio,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as http,
        ):
            for number, down in enumerate(outages, start=1):
                cycle = Cycle(down)
                cycles.append(cycle)
                await submit(studio, http, fake, number, following)
                await kill_and_restore(lane, redis, cycle)
                print(f"  outage {number}/{len(outages)} ({down:g} s) survived", file=sys.stderr)
            await until(lambda: not unfinished(lane), END_TIMEOUT_S, "every job to end")
            await asyncio.gather(*following, return_exceptions=True)
            if fake is not None:
                await until(lambda: bot_results(fake)[0] >= len(outages), 120, "every Discord result")
        for cycle in cycles:
            for generation_id in cycle.generations:
                found = rows(lane, "SELECT finished_at FROM generations WHERE id = ?", (generation_id,))
                if not found or found[0][0] is None:
                    continue
                finished = float(found[0][0])
                # One recorded in the instant between the snapshot and the kill is no outage case;
                # a job that waited out this outage and the next counts from the last one's end.
                if finished > cycle.killed_at:
                    back = max(c.back_at for c in cycles if c.back_at <= finished)
                    cycle.back_to_done.append(finished - back)
        return report(lane, cycles, api, bot, fake)
    finally:
        for task in following:
            task.cancel()
        for process in (api, bot):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        if fake is not None:
            await fake.stop()


async def submit(
    studio: Studio, http: httpx.AsyncClient, fake: Any, number: int, following: list[asyncio.Task[Any]]
) -> None:
    """One generation per front end; returns once the long one (Studio) is generating."""
    answer = await http.post("/v1/generations", json={"prompt": SHORT.format(n=number), "steps": 4})
    if answer.status_code != 202:
        raise RuntimeError(f"the API refused a generation: {answer.status_code} {answer.text}")
    if fake is not None:
        await (await fake.slash("imagine", {"prompt": SHORT.format(n=100 + number)})).wait_response()
    stepping = asyncio.Event()

    async def on_progress(event: jobs.ProgressEvent) -> None:
        if event.type == "step" and event.step >= 2:
            stepping.set()

    generation = await studio.generations.imagine(ME, LONG.format(n=number))

    async def follow() -> None:
        try:
            await studio.results.follow(generation.id, on_progress)
        except StudioError as error:  # counted as lost by the report
            print(f"  generation {generation.id}: {error}", file=sys.stderr)

    following.append(asyncio.create_task(follow()))
    await asyncio.wait_for(stepping.wait(), 180)


async def kill_and_restore(lane: Lane, redis: OwnRedis, cycle: Cycle) -> None:
    cycle.generations = unfinished(lane)
    redis.kill()
    cycle.killed_at = time.time()
    await asyncio.sleep(cycle.down_s)  # the outage itself: its length is what the drill sets
    await asyncio.to_thread(redis.start)  # returns once the AOF is loaded and PING answers
    cycle.back_at = time.time()


def bot_results(fake: Any) -> tuple[int, int]:
    """(Discord status messages turned into a result, result edits beyond the first one)."""
    results = extra = 0
    for thread in list(fake.threads.values()):
        for message in fake.bot_messages(thread.id):
            done = [e for _, e in message.edits if str(e.get("content") or "").startswith("✅")]
            results += bool(done)
            extra += max(0, len(done) - 1)
    return results, extra


def report(
    lane: Lane,
    cycles: list[Cycle],
    api: subprocess.Popen[bytes],
    bot: subprocess.Popen[bytes] | None,
    fake: Any,
) -> dict[str, Any]:
    generations = rows(
        lane,
        "SELECT g.id, g.status, json_extract(g.recipe_json, '$.batch'), COUNT(i.id) "
        "FROM generations g LEFT JOIN images i ON i.generation_id = g.id GROUP BY g.id",
    )
    lost = [g for g, status, batch, images in generations if status != "done" or images < batch]
    doubled = [g for g, _, batch, images in generations if images > batch]
    logs = {path.name: path.read_text(errors="replace") for path in sorted(lane.logs.glob("*.log"))}
    started = re.compile(r"→ ([0-9a-f]{32}):generate")
    runs: dict[str, int] = {}
    for name, text in logs.items():
        if "inference" in name:
            for generation_id in started.findall(text):
                runs[generation_id] = runs.get(generation_id, 0) + 1
    discord_results, discord_extra = bot_results(fake) if fake is not None else (0, 0)
    return {
        "submitted": len(generations),
        "lost": lost,
        "recorded_twice": doubled,
        "discord_results": discord_results,
        "discord_results_twice": discord_extra,
        "rerun_by_another_worker": sorted(g for g, n in runs.items() if n > 1),
        "workers_alive": sum(w.process.poll() is None for w in lane.workers),
        "workers": len(lane.workers),
        "api_alive": api.poll() is None,
        "bot_alive": None if bot is None else bot.poll() is None,
        "tracebacks": {name: text.count("Traceback") for name, text in logs.items() if "Traceback" in text},
        "cycles": [asdict(c) for c in cycles],
    }


def main(argv: list[str] | None = None) -> int:
    p = parser("Redis killed and restarted from its AOF while jobs run and front ends wait.", default_runs=1)
    p.add_argument(
        "--outages",
        default=DEFAULT_OUTAGES,
        help=f"seconds down per kill, comma separated ({DEFAULT_OUTAGES})",
    )
    p.add_argument("--no-bot", action="store_true", help="leave the Discord bot (and the fake Discord) out")
    args = p.parse_args(argv)
    outages = parse_outages(p, args.outages)
    print(machine_info(args))
    with Lab("redis-drill", keep=args.keep) as lab:
        redis = OwnRedis(lab.root / "redis")
        redis.start()
        try:
            lab.redis_url = redis.url
            lane = lab.lane("drill", max_jobs_per_user=20, **worker_overrides(args))
            for kind in ("inference", "inference", "post"):
                lane.start(kind)
            figures = asyncio.run(drill(lane, redis, outages, not args.no_bot))
        finally:
            for lane in lab.lanes:
                lane.stop_all()
            redis.stop()  # a private server: its data goes with the lab's folder
            lab.lanes.clear()  # nothing left to purge, and no Redis to purge it from
    print_report(figures, outages)
    write_json(args.json, figures)
    print(load_line())
    ok = (
        not figures["lost"]
        and not figures["recorded_twice"]
        and not figures["discord_results_twice"]
        and figures["workers_alive"] == figures["workers"]
        and figures["api_alive"]
        and figures["bot_alive"] in (None, True)
    )
    return 0 if ok else 1


def parse_outages(p: argparse.ArgumentParser, text: str) -> list[float]:
    try:
        outages = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        p.error("--outages takes seconds separated by commas, e.g. 1,2,60")
    if not outages or any(o < 0 or o > 600 for o in outages):
        p.error("--outages: between 1 and many values, each 0 to 600 seconds")
    return outages


def print_report(figures: dict[str, Any], outages: list[float]) -> None:
    back = [t for c in figures["cycles"] for t in c["back_to_done"]]
    downs = ", ".join(f"{o:g}" for o in outages)
    print(f"\n{len(outages)} Redis SIGKILLs, down {downs} s, each restarted from its AOF\n")
    bot = figures["bot_alive"]
    print(
        table(
            ["", "value"],
            [
                ["generations submitted (API, bot, Results.follow)", str(figures["submitted"])],
                ["lost (not done, or images missing)", str(len(figures["lost"]))],
                ["recorded twice (images beyond the batch)", str(len(figures["recorded_twice"]))],
                ["Discord results posted", str(figures["discord_results"]) if bot is not None else "-"],
                [
                    "Discord results posted twice",
                    str(figures["discord_results_twice"]) if bot is not None else "-",
                ],
                ["re-run by a second worker (lease lapsed)", str(len(figures["rerun_by_another_worker"]))],
                ["worker processes alive afterwards", f"{figures['workers_alive']}/{figures['workers']}"],
                ["API alive / bot alive", f"{figures['api_alive']} / {'-' if bot is None else bot}"],
                ["tracebacks in any log", str(sum(figures["tracebacks"].values()))],
            ],
        )
    )
    if back:
        print("\nRedis back -> each job unfinished at the kill recorded as done (seconds)\n")
        print(table(STATS_HEADERS, [summarize(back).row("Redis back -> job done", 1.0, 2)]))


if __name__ == "__main__":
    entry(main)
