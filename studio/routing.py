"""Model-aware routing: what each inference worker advertises, and who can run which model.

Every inference worker writes one advertisement in Redis (gpu_worker.advertise), refreshed on a
heartbeat and on every job start and end, with a time to live of a few heartbeats: a worker that
stops (or is killed) drops out of sight by itself. The advertisement says what the worker holds
warm, its device, dtype and memory, how many jobs it runs, and for each catalogue model it knows
how much memory the model needs there. Front ends read them here to refuse, up front, a model no
running worker can hold; workers read them to leave a job to an idle worker that holds its model
warm (gpu_worker.resilient).
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from studio import jobs
from studio.errors import InvalidRecipe, QueueUnavailable

log = logging.getLogger(__name__)


def advert_key(queue_name: str, worker_id: str) -> str:
    return f"{queue_name}:advert:{worker_id}"


class Advertisement(BaseModel):
    """One worker's view of itself, as published (msgpack of ``model_dump``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    worker_id: str
    device: str  # cpu, cuda, mps
    dtype: str  # the worker's dtype setting resolved (float16, float32, ...)
    budget_bytes: int  # the memory models may take: a setting, else the device's total
    total_bytes: int
    free_bytes: int
    warm: list[str]  # model ids in the worker's PipelineCache, most recently used last
    # catalogue model id -> bytes its weights take on this worker (None: weights not on its disk)
    needs: dict[str, int | None]
    cache_size: int = 1  # models it keeps warm at once
    running: int  # jobs running now
    slots: int  # jobs it runs at once
    at: float  # wall-clock time of this advertisement

    @property
    def idle(self) -> bool:
        return self.running < self.slots

    def can_hold(self, model_id: str) -> bool:
        """Whether the model is in this worker's catalogue and fits its budget; a size the worker
        cannot tell (weights not on its disk yet) is not held against it."""
        if model_id not in self.needs:
            return False
        need = self.needs[model_id]
        return need is None or fits(need, self.budget_bytes)


def fits(need_bytes: int, budget_bytes: int) -> bool:
    """The capacity rule: a model's weights at the worker's dtype must fit its memory budget.

    Activations and the VAE decode need room too, but they scale with the image, not the model;
    the operator leaves that headroom in the budget (worker_memory_gb) rather than us guessing it.
    """
    return need_bytes <= budget_bytes


def about(size: int) -> str:
    """Bytes for people: "24 GB", "1.5 GB", "640 MB"."""
    gb = size / 1e9
    if gb >= 10:
        return f"{gb:.0f} GB"
    if gb >= 1:
        return f"{gb:.1f} GB"
    return f"{max(size / 1e6, 0.1):.1f} MB" if size < 10e6 else f"{size / 1e6:.0f} MB"


class NoWorkerCanRun(InvalidRecipe):
    """The running workers that know the model all lack the memory for it."""

    def __init__(self, model_id: str, need: int, largest: int) -> None:
        super().__init__(
            "model",
            f"No worker here can run `{model_id}` (it needs about {about(need)}; the largest worker "
            f"has {about(largest)}). Choose another model, or ask the operator for a bigger worker.",
        )
        self.model_id = model_id


def refusal(model_id: str, adverts: list[Advertisement]) -> NoWorkerCanRun | None:
    """Why ``model_id`` cannot run on any of ``adverts``, or None when one can (or may) run it.

    No workers at all is not a refusal: jobs wait for one as they always did. Workers that do not
    know the model (not in their catalogue, weights not on their disk) cannot say it is too big.
    """
    knowing = [advert for advert in adverts if model_id in advert.needs]
    if not knowing or any(advert.can_hold(model_id) for advert in knowing):
        return None
    needs = [need for advert in knowing if (need := advert.needs[model_id]) is not None]
    return NoWorkerCanRun(model_id, min(needs), max(advert.budget_bytes for advert in adverts))


class Routing:
    """Reads the inference workers' advertisements."""

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    async def adverts(self) -> list[Advertisement]:
        """The live workers' advertisements (expired ones are gone from Redis), by worker id."""
        pattern = advert_key(self.queue_name, "*")
        try:
            keys = [key async for key in self.redis.scan_iter(match=pattern, count=100)]
            raw = await self.redis.mget(keys) if keys else []
        except (OSError, RedisError) as exc:
            raise QueueUnavailable(f"Could not read the workers: Redis said {type(exc).__name__}.") from None
        found = []
        for value in raw:
            if value is None:  # expired between SCAN and MGET
                continue
            try:
                found.append(Advertisement.model_validate(jobs.deserialize(value)))
            except (ValidationError, ValueError) as error:  # anyone who can write to Redis can write one
                log.warning("ignored a malformed worker advertisement: %s", error)
        return sorted(found, key=lambda advert: advert.worker_id)

    async def check(self, model_id: str) -> None:
        """NoWorkerCanRun when the running workers all know ``model_id`` is too big for them.

        While Redis is away nothing is refused here: queueing the job says so in its own words."""
        try:
            adverts = await self.adverts()
        except QueueUnavailable:
            return
        refused = refusal(model_id, adverts)
        if refused is not None:
            raise refused


WARM, ROOM, EVICT = 0, 1, 2  # what running a job on a model costs a worker (see job_cost)


def job_cost(model_id: str, warm: list[str], cache_size: int) -> int:
    """WARM: it holds the model; ROOM: it loads it into a free place; EVICT: it must drop another."""
    if model_id in warm:
        return WARM
    return ROOM if len(warm) < cache_size else EVICT


def cheaper_idle_worker(
    model_id: str, my_cost: int, adverts: list[Advertisement], me: str, now: float, max_age_s: float
) -> str | None:
    """Another worker, idle at its latest advertisement (no older than ``max_age_s``), that would
    run a job on ``model_id`` more cheaply than this one: the worker this one leaves the job to."""
    for advert in adverts:
        if (
            advert.worker_id != me
            and advert.idle
            and now - advert.at <= max_age_s
            and job_cost(model_id, advert.warm, advert.cache_size) < my_cost
        ):
            return advert.worker_id
    return None


def worker_lines(adverts: list[Advertisement], most: int = 8) -> list[str]:
    """A line per inference worker for /status: device, budget, busy or idle, and what it holds."""
    lines = []
    for advert in adverts[:most]:
        state = "idle" if advert.idle else f"busy {advert.running}/{advert.slots}"
        warm = ", ".join(f"`{model}`" for model in advert.warm) or "nothing yet"
        lines.append(
            f"• {advert.device}/{advert.dtype}, {about(advert.budget_bytes)}: {state} · warm: {warm}"
        )
    if len(adverts) > most:
        lines.append(f"• … and {len(adverts) - most} more")
    return lines
