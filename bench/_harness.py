"""Shared benchmark plumbing: isolated settings, worker subprocesses and arq timestamps (figures: _figures).

A ``Lab`` owns a temporary folder and cleans up after itself (workers stopped with SIGTERM, then
killed; its Redis keys deleted). Inside it, each ``Lane`` is one isolated studio: its own queue
prefix, data folder and worker settings, with workers started as ``python -m cli worker``
exactly as ``atelier demo`` starts them. The benchmark process itself never imports torch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import redis as redis_sync
from arq.connections import ArqRedis

from bench._figures import DEFAULT_REDIS_URL
from studio import jobs
from studio.queue import JobQueue
from studio.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DEMO_MODELS = REPO / "config" / "models.demo.toml"
TINY_DIR = REPO / "models" / "tiny"
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0


# What arq recorded about a finished job


@dataclass(frozen=True)
class ArqRecord:
    """arq's stored result: success, value and its own timestamps (epoch seconds, 1 ms resolution)."""

    success: bool
    value: Any
    enqueued: float
    started: float
    finished: float
    tries: int
    size: int  # bytes of the stored result (arq stores the job's arguments with it)

    @property
    def pickup(self) -> float:
        """Enqueued -> a worker started it: the worker's poll delay plus queueing behind other jobs."""
        return self.started - self.enqueued

    @property
    def in_worker(self) -> float:
        return self.finished - self.started


async def arq_record(redis: ArqRedis, job_id: str) -> ArqRecord:
    raw = await redis.get(jobs.ARQ_RESULT_PREFIX + job_id)
    if raw is None:
        raise RuntimeError(f"no arq result for job {job_id}")
    data = jobs.deserialize(raw)
    return ArqRecord(
        success=bool(data["s"]),
        value=data["r"],
        enqueued=data["et"] / 1000,
        started=data["st"] / 1000,
        finished=data["ft"] / 1000,
        tries=int(data["t"]),
        size=len(raw),
    )


class TimedWait:
    """Wraps a JobQueue's ``wait`` to note (epoch seconds) when it returned, per job id.

    Lets a benchmark split Results.follow into "waiting for the worker" and "recording the result"
    without touching the studio's code.
    """

    def __init__(self, queue: JobQueue) -> None:
        self._inner = queue.wait
        self.returned: dict[str, float] = {}
        queue.wait = self  # type: ignore[method-assign]

    async def __call__(self, job_id: str, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        found = await self._inner(job_id, *args, **kwargs)
        self.returned[job_id] = time.time()
        return found


# Workers


@dataclass
class Worker:
    kind: str
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float  # perf_counter when spawned
    ready_after: float | None = None  # seconds from spawn to its first health check

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (arq finishes or re-queues the running job and exits), then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_cpu(workers: Sequence[Worker], window: float) -> dict[int, float | None]:
    """Per worker pid, the share of one core it used while idle for ``window`` seconds."""
    before = {w.pid: cpu_seconds(w.pid) for w in workers}
    started = time.perf_counter()
    await asyncio.sleep(window)
    elapsed = time.perf_counter() - started
    after = {w.pid: cpu_seconds(w.pid) for w in workers}
    shares: dict[int, float | None] = {}
    for pid, first in before.items():
        last = after[pid]
        shares[pid] = None if first is None or last is None else (last - first) / elapsed
    return shares


@dataclass
class Lane:
    """One isolated studio: its own queue prefix, data folder and (worker) settings."""

    name: str
    settings: Settings
    env: dict[str, str]
    logs: Path
    workers: list[Worker] = field(default_factory=list)
    spawned: int = 0

    def start(self, kind: str) -> Worker:
        """Spawn ``python -m cli worker --queue kind`` (returns at once; see ``wait_ready``)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.spawned += 1
        log_path = self.logs / f"{self.spawned:02d}-{kind}.log"
        with log_path.open("ab") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker", "--queue", kind],
                cwd=REPO,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(kind, process, log_path, time.perf_counter())
        self.workers.append(worker)
        return worker

    def stop(self, worker: Worker) -> int:
        code = worker.stop()
        self.workers.remove(worker)
        return code

    def stop_all(self) -> None:
        for worker in list(self.workers):
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in list(self.workers):
            self.stop(worker)


async def wait_ready(queue: JobQueue, workers: Sequence[Worker], within: float = READY_TIMEOUT_S) -> None:
    """Until each worker wrote its own health-check key (arq does so once on_startup has run)."""
    deadline = time.monotonic() + within
    pending = list(workers)
    while pending:
        for worker in list(pending):
            if worker.process.poll() is not None:
                tail = worker.log_text()[-3000:]
                raise RuntimeError(f"{worker.kind} worker exited with {worker.process.returncode}:\n{tail}")
            pattern = jobs.health_check_key(queue.settings.queue_name(worker.kind), f"*-{worker.pid}-*")
            async for _ in queue.redis.scan_iter(match=pattern, count=1000):
                worker.ready_after = time.perf_counter() - worker.started_at
                pending.remove(worker)
                break
        if pending and time.monotonic() > deadline:
            names = ", ".join(f"{w.kind} (pid {w.pid}, log {w.log_path})" for w in pending)
            raise RuntimeError(f"workers not ready after {within:.0f}s: {names}")
        if pending:
            await asyncio.sleep(0.05)


class Lab:
    """A temporary folder, lanes in it, and a thorough clean-up (also on errors and Ctrl-C)."""

    def __init__(
        self, name: str, redis_url: str = DEFAULT_REDIS_URL, keep: bool = False, tiny_models: bool = True
    ) -> None:
        self.name = name
        self.redis_url = redis_url
        self.keep = keep
        self.tiny_models = tiny_models  # False: a benchmark with no worker needs none built
        self.tag = f"bench-{os.getpid()}-{secrets.token_hex(2)}"
        self.root = Path(tempfile.mkdtemp(prefix=f"atelier-bench-{name}-"))
        self.lanes: list[Lane] = []
        self._previous_sigterm: Any = signal.SIG_DFL

    def lane(self, name: str, **overrides: Any) -> Lane:
        """A lane; ``overrides`` are Settings fields given to the workers (ATELIER_<FIELD>) and the caller."""
        data_dir = self.root / name
        fields: dict[str, Any] = {
            "redis_url": self.redis_url,
            "queue_prefix": f"{self.tag}-{name}",
            "data_dir": data_dir,
            "models_file": DEMO_MODELS,
            # results of benchmark jobs need not outlive the run (they carry the PNGs)
            "result_ttl_s": 600,
            **overrides,
        }
        settings = Settings(**fields)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
        env.update(
            HF_HUB_OFFLINE="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            TRANSFORMERS_OFFLINE="1",
            ATELIER_CONFIG=str(self.root / "no-config.toml"),  # no config file: defaults + these only
        )
        env.update({f"ATELIER_{key.upper()}": str(value) for key, value in fields.items()})
        lane = Lane(name, settings, env, data_dir / "logs")
        self.lanes.append(lane)
        return lane

    def __enter__(self) -> Lab:
        # `kill <pid>` of the benchmark must not orphan its workers: make SIGTERM unwind like Ctrl-C.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        if self.tiny_models:
            ensure_tiny_models()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        try:
            for lane in self.lanes:
                lane.stop_all()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        try:
            self.purge_redis()
        except redis_sync.RedisError as error:
            print(f"warning: could not clean up Redis keys: {error}", file=sys.stderr)
        if self.keep or exc_type not in (None, KeyboardInterrupt, SystemExit):
            print(f"kept {self.root} (worker logs under */logs)", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def purge_redis(self) -> None:
        """Delete every key of this lab's lanes: queues, health checks, cancel flags, arq job/results."""
        client: redis_sync.Redis = redis_sync.Redis.from_url(self.redis_url)
        try:
            prefixes = tuple(f"{lane.settings.queue_prefix}:" for lane in self.lanes)
            if not prefixes:
                return
            doomed: list[bytes | str] = []
            for lane in self.lanes:
                for kind in jobs.QUEUES:
                    members = cast(list[bytes], client.zrange(lane.settings.queue_name(kind), 0, -1))
                    for job_id in members:
                        name = job_id.decode()
                        doomed += [f"arq:job:{name}", f"arq:in-progress:{name}", f"arq:retry:{name}"]
                doomed += list(client.scan_iter(match=f"{lane.settings.queue_prefix}:*", count=1000))
            for key in client.scan_iter(match=jobs.ARQ_RESULT_PREFIX + "*", count=1000):
                raw = cast(bytes | None, client.get(key))
                if raw is None:
                    continue
                try:
                    queue_name = str(jobs.deserialize(raw).get("q", ""))
                except Exception:  # not one of ours
                    continue
                if queue_name.startswith(prefixes):
                    doomed.append(key)
            for start in range(0, len(doomed), 500):
                client.delete(*doomed[start : start + 500])
        finally:
            client.close()


def entry(main: Callable[[], int]) -> None:
    """Run a benchmark's main and exit with its code; Ctrl-C or SIGTERM: exit 130 (after clean-up)."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def ensure_tiny_models() -> None:
    """Build the tiny demo models once (in a subprocess, so this process stays free of torch)."""
    from gpu_worker.tiny import TINY_VERSION  # no torch at import time

    def current(name: str) -> bool:
        marker = TINY_DIR / name / "atelier-tiny.json"
        return marker.is_file() and json.loads(marker.read_text()).get("version") == TINY_VERSION

    if all(current(name) for name in ("tiny-sd15", "tiny-sdxl")):
        return
    print(f"building tiny models in {TINY_DIR} ...", file=sys.stderr)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, "-m", "cli", "models", "make-tiny", str(TINY_DIR)], cwd=REPO, env=env, check=True
    )


def quiet_libraries() -> None:
    """No progress bars or load reports between the figures."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.disable_progress_bar()
        library.set_verbosity_error()
    # A second adapter in one pipeline warns, and peft lists the other adapters' keys as
    # "missing" when it loads one: both expected here.
    warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
    logging.getLogger("peft").setLevel(logging.ERROR)
