"""A burst of /imagine in one channel under Discord's rate limits: how soon each project thread opens.

The real bot process runs against the fake Discord of the test suite with its rate limits
enforced (per-route buckets: 5 message sends per 5 s per channel, thread creation, webhooks; the
global 50 requests/s as 429s). ``BURST`` /imagine arrive in one channel over ``SPREAD_S`` seconds,
twice in the same run, each with a fresh fake and bot:

* before: ``project_thread_starter_message = true``, a thread started from a message posted in
  the channel (every thread waits for the channel's message bucket);
* after: the default, a thread without a starter message (the introduction goes inside it).

Time to thread = the command's INTERACTION_CREATE -> the fake created its thread. 429s seen are
the ones the fake answered; unhandled ones are 429s never followed by a success of the same
request, or commands that did not end with their "On it" answer. No worker runs: the jobs only
queue (opening threads does not depend on them).

    .venv/bin/python -m bench.thread_burst --runs 1
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/thread_burst.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from bench._figures import check_runs, machine_info, parser, table, write_json
from bench._harness import Lab, Lane, entry
from bench.discord_latency import p99, start_bot
from tests.fake_discord import FakeDiscord, rules

BURST = 50
SPREAD_S = 2.0  # the burst arrives over this long ("within a few seconds")
ANSWER_TIMEOUT_S = 180.0
TARGET_P99_S = 10.0


@dataclass
class Burst:
    to_thread: list[float] = field(default_factory=list)
    acks: list[float] = field(default_factory=list)
    answered: int = 0
    seen_429: int = 0
    unhandled_429: int = 0
    buckets: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


async def one_burst(lane: Lane) -> Burst:
    fake = FakeDiscord()
    await fake.start()
    bot = start_bot(lane, fake)
    out = Burst()
    try:
        await fake.wait_connected(timeout=60)
        await fake.wait_for(lambda: fake.commands, timeout=30)
        fake.enforce_rate_limits()

        async def command(n: int) -> tuple[float, Any]:
            await asyncio.sleep(n * SPREAD_S / BURST)
            sent = fake.wall()
            return sent, await fake.slash("imagine", {"prompt": f"burst lantern {n}", "steps": 1})

        sent = await asyncio.gather(*(command(n) for n in range(BURST)))
        responses = await asyncio.gather(*(record.wait_response(timeout=10) for _, record in sent))
        out.acks = [r.latency for r in responses]

        def threads_by_name() -> dict[str, float] | None:
            opened = {t.name: t.created_at for t in fake.threads.values()}
            return opened if all(f"burst lantern {n}" in opened for n in range(BURST)) else None

        opened = await fake.wait_for(threads_by_name, timeout=ANSWER_TIMEOUT_S)
        out.to_thread = [opened[f"burst lantern {n}"] - at for n, (at, _) in enumerate(sent)]
        answers = await asyncio.gather(
            *(record.wait_followups(1, timeout=ANSWER_TIMEOUT_S) for _, record in sent)
        )
        out.answered = sum(1 for a in answers if a and str(a[0].content).startswith("On it"))
        out.seen_429 = len(fake.rate_limited)
        for hit in fake.rate_limited:
            out.buckets[hit.bucket] = out.buckets.get(hit.bucket, 0) + 1
        out.unhandled_429 = sum(
            1
            for hit in fake.rate_limited
            if not any(
                r.method == hit.method and r.path == hit.path and r.status < 300 and r.time > hit.at
                for r in fake.requests
            )
        ) + (BURST - out.answered)
        out.violations = list(fake.violations)
    finally:
        bot.send_signal(signal.SIGTERM)
        try:
            bot.wait(timeout=20)
        except subprocess.TimeoutExpired:
            bot.kill()
        await fake.stop()
    return out


def merge(bursts: list[Burst]) -> Burst:
    total = Burst()
    for b in bursts:
        total.to_thread += b.to_thread
        total.acks += b.acks
        total.answered += b.answered
        total.seen_429 += b.seen_429
        total.unhandled_429 += b.unhandled_429
        total.violations += b.violations
        for k, v in b.buckets.items():
            total.buckets[k] = total.buckets.get(k, 0) + v
    return total


def median(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2]


def main(argv: list[str] | None = None) -> int:
    p = parser("Time to project thread for a burst of /imagine under Discord's rate limits.", default_runs=1)
    threads_n, threads_s = rules.RATE_LIMIT_BUCKETS["thread-create"]
    p.add_argument(
        "--thread-bucket",
        metavar="N/S",
        help=f"thread creation: N per S seconds (no published figure; default {threads_n}/{threads_s:g})",
    )
    args = p.parse_args(argv)
    check_runs(p, args.runs)
    if args.thread_bucket:
        n, per = args.thread_bucket.split("/")
        rules.RATE_LIMIT_BUCKETS["thread-create"] = (int(n), float(per))
    print(machine_info(args))
    limits = ", ".join(f"{k} {n}/{s:g} s" for k, (n, s) in rules.RATE_LIMIT_BUCKETS.items())
    print(f"fake Discord buckets: {limits}; global {rules.GLOBAL_RATE_LIMIT_PER_SECOND}/s")
    figures: dict[str, Burst] = {}
    with Lab("threads", args.redis_url, args.keep) as lab:
        for label, starter in (("before (starter message)", True), ("after (no starter message)", False)):
            bursts = []
            for run in range(args.runs):  # a fresh studio each time: nothing left over to resume
                lane = lab.lane(
                    f"{'starter' if starter else 'direct'}{run}",
                    max_jobs_per_user=BURST + 5,
                    project_thread_starter_message=starter,
                )
                bursts.append(asyncio.run(one_burst(lane)))
            figures[label] = merge(bursts)
    print(f"\n{BURST} /imagine in one channel over {SPREAD_S:g} s, {args.runs} run(s); seconds\n")
    rows = []
    for label, b in figures.items():
        rows.append(
            [
                label,
                f"{median(b.to_thread):.2f}",
                f"{p99(b.to_thread):.2f}",
                f"{max(b.acks):.3f}",
                f"{b.answered}/{BURST * args.runs}",
                str(b.seen_429),
                str(b.unhandled_429),
                ", ".join(f"{k} {v}" for k, v in sorted(b.buckets.items())) or "-",
            ]
        )
    print(
        table(
            ["", "thread p50", "thread p99", "ack max", "answered", "429 seen", "unhandled", "429 by bucket"],
            rows,
        )
    )
    for label, b in figures.items():
        if b.violations:
            print(f"{label}: violations {b.violations[:5]}")
    after = figures["after (no starter message)"]
    ok = p99(after.to_thread) <= TARGET_P99_S and after.unhandled_429 == 0
    print(f"\ntarget (after: p99 <= {TARGET_P99_S:g} s, no unhandled 429): {'met' if ok else 'NOT met'}")
    write_json(
        args.json,
        {
            label: {
                "to_thread": b.to_thread,
                "acks": b.acks,
                "answered": b.answered,
                "seen_429": b.seen_429,
                "unhandled_429": b.unhandled_429,
                "buckets": b.buckets,
                "violations": b.violations,
            }
            for label, b in figures.items()
        }
        | {"limits": rules.RATE_LIMIT_BUCKETS, "started": time.time()},
    )
    return 0 if ok else 1


if __name__ == "__main__":
    entry(main)
