"""What metrics cost: a job's bookkeeping on a worker, and one /metrics scrape.

``JobMeter`` (started, ended, run time, queue wait, images: what ``gpu_worker.tasks`` adds to
every job), a JSON log line with its context ids (``log_format = "json"``, redaction included),
and ``metrics.exposition()`` with the series of ``--models`` models and three queues filled in
(what Prometheus reads at each scrape). In process; no Redis, no workers.

    .venv/bin/python -m bench.metrics_overhead --runs 5000
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/metrics_overhead.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import io
import logging
import time
from collections.abc import Callable

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
from studio import metrics
from studio.jsonlog import JsonFormatter, RedactSecrets, log_context


def timed(runs: int, call: Callable[[int], object]) -> list[float]:
    for n in range(50):
        call(n)
    samples = []
    for n in range(runs):
        started = time.perf_counter()
        call(n)
        samples.append(time.perf_counter() - started)
    return samples


def job(n: int, models: int) -> None:
    meter = metrics.JobMeter("inference", f"model-{n % models}", attempt=1, enqueued_at=time.time() - 1.5)
    meter.ended("done", images=4)


def main() -> int:
    p = parser(__doc__.splitlines()[0], default_runs=5000)
    p.add_argument("--models", type=int, default=20, help="distinct model ids in the series (default 20)")
    args = p.parse_args()
    check_runs(p, args.runs, 10)
    print(machine_info())
    samples = {"JobMeter: one job's bookkeeping": timed(args.runs, lambda n: job(n, args.models))}

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets(["a-secret-token-value"]))
    logger = logging.getLogger("bench.metrics_overhead")
    logger.handlers, logger.propagate = [handler], False

    def log_line(n: int) -> None:
        with log_context(job_id=f"g{n}", generation_id=f"g{n}"):
            logger.warning("job %s failed: %s", f"g{n}", "the init image is larger than 4096 x 4096 pixels")
        stream.seek(0)
        stream.truncate()

    samples["JSON log line with ids, redacted"] = timed(args.runs, log_line)
    for queue in ("inference", "post", "training"):
        metrics.FAILURES.labels(queue, "error").inc(0)
    scrapes = max(10, args.runs // 50)
    samples["exposition(): one /metrics scrape"] = timed(scrapes, lambda n: metrics.exposition())
    size = len(metrics.exposition())
    stats = {label: summarize(values) for label, values in samples.items()}
    print(table(STATS_HEADERS, [s.row(label, scale=1e6, digits=0) for label, s in stats.items()]))
    print(f"(microseconds; the scrape is {size:,} bytes with {args.models} models)")
    print(load_line())
    write_json(args.json, {"samples": samples, "models": args.models, "scrape_bytes": size})
    return 0


if __name__ == "__main__":
    entry(main)
