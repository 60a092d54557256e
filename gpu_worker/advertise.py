"""An inference worker's advertisement in Redis: what it holds warm and what it could hold.

Written on a heartbeat (``advertise_interval_s``) with a time to live of three heartbeats, and at
once whenever a job starts or ends, so others see the worker busy or idle without waiting for the
next beat. Deleted when the worker stops; a killed worker's simply expires. studio.routing reads it.

A model's need is its weights at the worker's dtype, read from the safetensors headers (dtype and
shape of each tensor, no tensor loaded): a fp32 file loaded in fp16 takes half its bytes on disk.
With ``cpu_offload`` only one component sits on the device at a time: the largest is the need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from arq.connections import ArqRedis
from arq.jobs import deserialize_job

from studio import jobs
from studio.catalogue import load_catalogue
from studio.errors import CatalogueError, QueueUnavailable
from studio.model_hashes import hub_snapshot
from studio.outage import REDIS_DOWN
from studio.routing import Advertisement, Routing, advert_key, cheaper_idle_worker, job_cost
from studio.safetensors_header import ITEM_BYTES, HeaderError, read_file_header
from studio.settings import Settings

if TYPE_CHECKING:  # torch and diffusers only where a cache exists: post workers import this too
    from gpu_worker.pipelines import PipelineCache

log = logging.getLogger(__name__)
_FLOATS = frozenset({"F16", "BF16", "F32", "F64"})
SIZES_EVERY_S = 30.0  # the catalogue's sizes are worked out again this often (a file may change)


def file_bytes(path: Path, item_bytes: int) -> int:
    """One weights file's tensors at ``item_bytes`` per float (integers keep their own width)."""
    if path.suffix != ".safetensors":
        return path.stat().st_size  # a pickle is never opened: its size on disk stands in
    try:
        header = read_file_header(path)
    except HeaderError:
        return path.stat().st_size
    total = 0
    for info in header.tensors.values():
        count = math.prod(info.shape)
        total += count * (item_bytes if info.dtype in _FLOATS else ITEM_BYTES.get(info.dtype, 4))
    return total


def component_files(folder: Path, variant: str | None) -> list[Path]:
    """A diffusers component's weights: the variant's files if it has them, else the plain ones
    (``model.safetensors``, ``diffusion_pytorch_model-00001-of-00002.safetensors``), else .bin."""
    for suffix in (".safetensors", ".bin"):
        found = sorted(path for path in folder.glob(f"*{suffix}") if path.is_file())
        if variant:
            chosen = [path for path in found if f".{variant}." in path.name]
            if chosen:
                return chosen
        plain = [path for path in found if path.name.count(".") == 1]
        if plain:
            return plain
    return []


def model_bytes(ref: jobs.ModelRef, item_bytes: int) -> int | None:
    """The memory a model's weights take at ``item_bytes`` per float; None when they are not here."""
    if ref.kind == "file":
        path = Path(ref.source)
        return file_bytes(path, item_bytes) if path.is_file() else None
    folder = Path(ref.source) if ref.kind == "folder" else hub_snapshot(ref.source)
    if folder is None or not folder.is_dir():
        return None
    parts = [
        sum(file_bytes(path, item_bytes) for path in component_files(part, ref.variant))
        for part in sorted(folder.iterdir())
        if part.is_dir()
    ]
    if not any(parts):
        return None
    return max(parts) if ref.cpu_offload else sum(parts)


def memory(device: str, budget_gb: float) -> tuple[int, int, int]:
    """(budget, total, free) bytes: the device's memory, or this process's RSS against the budget
    (else the machine's RAM) on CPU."""
    if device == "cuda":
        import torch

        free, total = torch.cuda.mem_get_info()
    else:
        total = int(budget_gb * 1e9) or os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        free = max(0, total - _rss())
    budget = int(budget_gb * 1e9) if budget_gb > 0 else total
    return budget, int(total), int(free)


def _rss() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Advertiser:
    """Keeps one worker's advertisement fresh; ``changed()`` publishes at once (job start or end)."""

    def __init__(
        self,
        redis: ArqRedis,
        settings: Settings,
        queue_name: str,
        worker_id: str,
        cache: PipelineCache,
        running: Callable[[], int],
        slots: int,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.key = advert_key(queue_name, worker_id)
        self.worker_id = worker_id
        self.cache = cache
        self.running = running
        self.slots = slots
        self._wake = asyncio.Event()
        self._needs: dict[str, int | None] = {}
        self._needs_at = -math.inf
        self._task: asyncio.Task[None] | None = None

    @property
    def ttl_s(self) -> float:
        return self.settings.advertise_interval_s * 3

    def needs(self) -> dict[str, int | None]:
        """Each catalogue model's need on this worker (blocking: reads headers; run in a thread)."""
        from gpu_worker.pipelines import family_dtype

        try:
            catalogue = load_catalogue(self.settings.models_file)
        except CatalogueError as error:
            log.warning("advertising no models: %s", error)
            return {}
        found: dict[str, int | None] = {}
        for entry in catalogue:
            ref = entry.ref()
            dtype = family_dtype(ref.family, self.cache.dtype, _bf16_ok(self.cache.device))
            try:
                found[entry.id] = model_bytes(ref, dtype.itemsize)
            except OSError as error:
                log.warning("model %s: size unknown: %s", entry.id, error)
                found[entry.id] = None
        return found

    def snapshot(self) -> Advertisement:
        budget, total, free = memory(self.cache.device, self.settings.worker_memory_gb)
        return Advertisement(
            worker_id=self.worker_id,
            device=self.cache.device,
            dtype=str(self.cache.dtype).removeprefix("torch."),
            budget_bytes=budget,
            total_bytes=total,
            free_bytes=free,
            warm=self.cache.warm(),
            cache_size=self.cache.size,
            needs=self._needs,
            running=self.running(),
            slots=self.slots,
            at=time.time(),
        )

    async def publish(self) -> None:
        """Write the advertisement now (sizes as last worked out: that is the heartbeat's job)."""
        advert = self.snapshot()
        await self.redis.set(self.key, jobs.serialize(advert.model_dump()), px=int(self.ttl_s * 1000))

    def changed(self) -> None:
        """Publish soon, from the heartbeat's task."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            self._wake.clear()
            try:
                if time.monotonic() - self._needs_at > SIZES_EVERY_S:
                    self._needs = await asyncio.to_thread(self.needs)
                    self._needs_at = time.monotonic()
                await self.publish()
            except REDIS_DOWN:
                pass  # the worker's own outage handling says so; the next beat writes it again
            except Exception:  # an advertisement must never take the worker down
                log.exception("could not advertise this worker")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.advertise_interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(*REDIS_DOWN):
            await self.redis.delete(self.key)


def _bf16_ok(device: str) -> bool:
    import torch

    return device == "cuda" and torch.cuda.is_bf16_supported()


class WarmPreference:
    """Leaves a job to an idle worker that runs it more cheaply: one that holds its model warm
    rather than one that must load it, or one with a free place in its cache rather than one that
    must evict a model for it (studio.routing.job_cost).

    Only for a short bounded while (``wait_s`` from the first time this worker left the job), and
    only while that worker's advertisement says it is idle: a busy or vanished one, or the time
    spent, and this worker claims the job as before (gpu_worker.resilient). Nothing about claiming
    changes, so arq's claim and the job lease still decide who runs a job, once.
    """

    REMEMBERED = 2000  # job ids kept in the small maps below before they are cleared

    def __init__(
        self,
        redis: ArqRedis,
        queue_name: str,
        worker_id: str,
        cache: PipelineCache,
        wait_s: float,
        max_age_s: float,
    ) -> None:
        self.routing = Routing(redis, queue_name)
        self.redis = redis
        self.worker_id = worker_id
        self.cache = cache
        self.wait_s = wait_s
        self.max_age_s = max_age_s
        self.left = 0  # jobs this worker left to a cheaper one, once each
        self._models: dict[str, str | None] = {}
        self._left: dict[str, float] = {}
        self._adverts: list[Advertisement] = []
        self._read = False

    async def leave(self, job_id: str) -> bool:
        """Whether to pass over ``job_id`` in this poll."""
        if self.wait_s <= 0:
            return False
        model = await self._model_of(job_id)
        if model is None or model in self.cache.warm():
            return False  # nobody runs it more cheaply than a worker that holds it
        my_cost = job_cost(model, self.cache.warm(), self.cache.size)
        holder = cheaper_idle_worker(
            model, my_cost, await self._current_adverts(), self.worker_id, time.time(), self.max_age_s
        )
        if holder is None:
            self._left.pop(job_id, None)
            return False
        if len(self._left) > self.REMEMBERED:
            self._left.clear()
        now = time.monotonic()
        if job_id not in self._left:
            self._left[job_id] = now
            self.left += 1
            log.debug("job %s: left to %s, which runs %s more cheaply", job_id, holder, model)
        if now - self._left[job_id] >= self.wait_s:
            del self._left[job_id]
            log.info(
                "job %s on %s: left %.1fs to %s, which did not take it; taken here",
                job_id,
                model,
                self.wait_s,
                holder,
            )
            return False
        return True

    async def _model_of(self, job_id: str) -> str | None:
        """The model a queued generation asks for (read once per job); None for other jobs."""
        if job_id in self._models:
            return self._models[job_id]
        raw = await self.redis.get(jobs.ARQ_JOB_PREFIX + job_id)
        model: str | None = None
        if raw is not None:
            try:
                job = deserialize_job(raw, deserializer=jobs.deserialize)
                if job.function == jobs.GENERATE and job.args:
                    model = str(job.args[0]["model"]["id"])
            except Exception:  # a malformed job is arq's to fail when it runs it, not ours
                model = None
        if len(self._models) > self.REMEMBERED:
            self._models.clear()
        self._models[job_id] = model
        return model

    def new_poll(self) -> None:
        """The advertisements are read again, once, for the jobs of each poll: a job queued right
        after a result must be judged on the adverts written before that result (see resilient)."""
        self._read = False

    async def _current_adverts(self) -> list[Advertisement]:
        if not self._read:
            try:
                self._adverts = await self.routing.adverts()
            except QueueUnavailable:
                self._adverts = []  # Redis is away: the claim that follows says so
            self._read = True
        return self._adverts
