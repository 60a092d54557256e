"""What the prompt blocklist costs each prepare: ``Policy.check_prompt`` with a full list.

A server with ``--words`` blocked words and ``--regexes`` blocked regexes (the shapes the
shape check accepts, each with open-ended repeats), checked against an ordinary 400-character
prompt that breaks none of them (every rule runs: the worst case of a passing prompt), against a
hostile prompt (2,000 characters of one letter, the input that makes backtracking regexes slow),
and the pure matching without the store's read. In process, SQLite on a temporary folder.

    .venv/bin/python -m bench.policy_check --runs 500
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/policy_check.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable

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
from bench._harness import entry
from studio.entities import Requester
from studio.policy import Policy, blocked_by, checked_rule
from studio.settings import load_settings
from studio.store import Store

SERVER = "2000"
ADMIN = Requester("discord:1", "admin", admin=True, server=SERVER)
PROMPT = (
    "a quiet harbour town at dawn, fishing boats with red sails, gulls over the water, soft golden "
    "light through the morning fog, cobbled streets leading down to the pier, an old lighthouse on "
    "the cliff, detailed watercolour illustration, muted palette, wide angle, gentle reflections on "
    "the wet stones, a cat asleep on a barrel, laundry between the houses, smoke from chimneys"
)
HOSTILE = "a" * 2000


async def timed(runs: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(20):
        await call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def measure(folder: Path, runs: int, words: int, regexes: int) -> dict[str, list[float]]:
    settings = load_settings(data_dir=folder)
    samples: dict[str, list[float]] = {}
    async with Store(settings.database_path) as store:
        policy = Policy(store.policy)
        for n in range(words):
            await policy.add(ADMIN, "word", f"blockedword{n}")
        for n in range(regexes):
            await policy.add(ADMIN, "regex", rf"x{n}[a-z]+\d{{2,4}}.*q{n}")
        rules = await store.policy.rules(SERVER)

        async def match(text: str) -> None:
            assert blocked_by(rules, text) is None

        samples["check_prompt, 400-char prompt"] = await timed(
            runs, lambda: policy.check_prompt(SERVER, PROMPT, "blurry, text")
        )
        samples["check_prompt, 2,000 x 'a'"] = await timed(runs, lambda: policy.check_prompt(SERVER, HOSTILE))
        samples["matching only, 400-char prompt"] = await timed(runs, lambda: match(PROMPT))
        samples["store read only (the rules)"] = await timed(runs, lambda: store.policy.rules(SERVER))
    return samples


def main() -> int:
    p = parser(__doc__.splitlines()[0], default_runs=500)
    p.add_argument("--words", type=int, default=150)
    p.add_argument("--regexes", type=int, default=50)
    args = p.parse_args()
    check_runs(p, args.runs, 10)
    print(machine_info())
    print(load_line())
    checked_rule("regex", r"x0[a-z]+\d{2,4}.*q0")  # the bench's regexes pass the shape check
    with tempfile.TemporaryDirectory(prefix="policy-bench-") as tmp:
        samples = asyncio.run(measure(Path(tmp), args.runs, args.words, args.regexes))
    stats = {label: summarize(values) for label, values in samples.items()}
    print(f"{args.words} words + {args.regexes} regexes on one server")
    print(table(STATS_HEADERS, [s.row(label, scale=1e6, digits=0) for label, s in stats.items()]))
    print("(microseconds)")
    print(load_line())
    write_json(args.json, {"samples": samples, "words": args.words, "regexes": args.regexes})
    return 0


if __name__ == "__main__":
    entry(main)
