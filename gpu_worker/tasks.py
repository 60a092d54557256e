"""The arq job functions: thin coroutines that decode a payload, run the work in a thread, reply.

Each is bound to its entry of studio.jobs.JOBS by ``@task``: the payload is read as that
job's payload type, and only that job's result type may be the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic

from arq.worker import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gpu_worker.adapters import AdapterFiles, AdapterMissing
from gpu_worker.lease import job_lease
from studio import jobs, metrics
from studio.jsonlog import log_context
from studio.outage import REDIS_DOWN
from studio.recipe import Recipe
from studio.settings import Settings

log = logging.getLogger(__name__)


# A job's work: the worker's context and the job's payload in, the job's result out.
Work = Callable[[dict[str, Any], jobs.PayloadT], Awaitable[jobs.ResultT]]


@dataclass(frozen=True)
class Task(Generic[jobs.PayloadT, jobs.ResultT]):
    """A worker's half of one job: ``work`` takes the job's payload and returns its result."""

    job: jobs.JobSpec[jobs.PayloadT, jobs.ResultT]
    work: Work[jobs.PayloadT, jobs.ResultT]

    async def run(self, ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        """What arq calls: the wire's dicts in and out (msgpack, see studio.jobs)."""
        decoded = self.job.payload_of(payload)
        meter = metrics.JobMeter(self.job.queue, _model_of(decoded), ctx.get("job_try", 1), _enqueued(ctx))
        generation_id = getattr(decoded, "generation_id", None)
        with log_context(job_id=ctx.get("job_id"), generation_id=generation_id):
            try:
                result = await self.work(ctx, decoded)
                if type(result) is not self.job.result:
                    raise TypeError(
                        f"{self.job.name} replied {type(result).__name__}, not {self.job.result.__name__}"
                    )
            except Retry:
                meter.ended("retried")
                raise
            except asyncio.CancelledError:  # shutdown or arq's time limit
                meter.ended("interrupted")
                raise
            except Exception as error:
                meter.ended("failed", metrics.failure_reason(error))
                raise
        status = getattr(result, "status", "done")
        meter.ended(status, images=len(getattr(result, "images", ())) if status == "done" else 0)
        return result.model_dump()


def _model_of(payload: Any) -> str:
    """The catalogue id of the job's model (a bounded label), or '' for jobs without one."""
    model = getattr(payload, "model", None)
    return model.id if isinstance(model, jobs.ModelRef) else ""


def _enqueued(ctx: dict[str, Any]) -> float | None:
    enqueued = ctx.get("enqueue_time")
    return enqueued.timestamp() if enqueued is not None else None


def task(
    job: jobs.JobSpec[jobs.PayloadT, jobs.ResultT],
) -> Callable[[Work[jobs.PayloadT, jobs.ResultT]], Task[jobs.PayloadT, jobs.ResultT]]:
    """Bind a job's work to its entry of studio.jobs.JOBS."""

    def bind(work: Work[jobs.PayloadT, jobs.ResultT]) -> Task[jobs.PayloadT, jobs.ResultT]:
        return Task(job, work)

    return bind


async def _publish(ctx: dict[str, Any], job_id: str, event: jobs.ProgressEvent) -> None:
    """Publish a progress event; while Redis is away it is dropped (progress is best effort)."""
    settings: Settings = ctx["settings"]
    try:
        await ctx["redis"].publish(
            jobs.progress_channel(settings.queue_prefix, job_id), jobs.serialize(event.model_dump())
        )
    except REDIS_DOWN:
        log.debug("job %s: progress %s dropped, Redis is away", job_id, event.type)


async def _cancel_requested(ctx: dict[str, Any], job_id: str) -> bool:
    """Whether the job's cancel flag is set; False while Redis cannot say (asked again soon)."""
    settings: Settings = ctx["settings"]
    try:
        return bool(await ctx["redis"].exists(jobs.cancel_key(settings.queue_prefix, job_id)))
    except REDIS_DOWN:
        return False


async def _watch_cancel(ctx: dict[str, Any], job_id: str, flag: threading.Event) -> None:
    while not flag.is_set():
        if await _cancel_requested(ctx, job_id):
            flag.set()
            return
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _running(ctx: dict[str, Any], job_id: str, attempt: int) -> AsyncIterator[threading.Event]:
    """A running job: its lease held, 'started' announced, and the cancel flag watched.

    Yields the event the blocking half checks between steps. When the worker shuts down, the
    event stops the thread and arq retries the job. The flag is read once before anything is
    loaded, so a job cancelled while it waited in the queue ends without touching its model.
    """
    settings: Settings = ctx["settings"]
    async with job_lease(ctx["redis"], job_id, settings.job_lease_s):
        cancel = threading.Event()
        if await _cancel_requested(ctx, job_id):
            cancel.set()
        await _publish(ctx, job_id, jobs.ProgressEvent(type="started", attempt=attempt))
        watcher = asyncio.create_task(_watch_cancel(ctx, job_id, cancel))
        try:
            yield cancel
        except asyncio.CancelledError:
            cancel.set()
            raise
        except (RedisConnectionError, RedisTimeoutError) as error:
            # A Redis round trip of the job itself (fetching its inputs) failed: run it again
            # shortly rather than fail it for good. (Not OSError: a missing file is no outage.)
            log.warning("job %s: Redis went away before it started (%s); retried", job_id, error)
            raise Retry(defer=2) from None
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def _publisher(ctx: dict[str, Any], job_id: str) -> Callable[[jobs.ProgressEvent], None]:
    """Publish progress from the blocking thread onto the worker's event loop."""
    loop = asyncio.get_running_loop()

    def publish(event: jobs.ProgressEvent) -> None:
        asyncio.run_coroutine_threadsafe(_publish(ctx, job_id, event), loop)

    return publish


@task(jobs.GENERATE_SPEC)
async def generate(ctx: dict[str, Any], job: jobs.GenerateJob) -> jobs.GenerateResult:
    from gpu_worker import inference  # torch and diffusers: inference workers only
    from gpu_worker.preview import live_preview

    settings: Settings = ctx["settings"]
    job_id: str = ctx["job_id"]
    attempt: int = ctx["job_try"]

    def reply(status: str, error: str | None = None) -> jobs.GenerateResult:
        return jobs.GenerateResult(
            generation_id=job.generation_id,
            status=status,  # type: ignore[arg-type]
            attempt=attempt,
            error=error,
        )

    async with _running(ctx, job_id, attempt) as cancel:
        publish = _publisher(ctx, job_id)
        live = live_preview(job)  # None unless the job asks for previews

        def on_step(step: int, total: int) -> None:  # called from the pipeline thread
            shown = live.take() if live is not None else None
            publish(jobs.ProgressEvent(type="step", step=step, total=total, preview=shown))

        try:
            if cancel.is_set():
                return reply("cancelled")
            recipe = Recipe.model_validate(job.recipe)
            files: AdapterFiles = ctx["adapter_files"]
            await files.fetch(ctx["redis"], settings.queue_prefix, job.adapters)
            return await asyncio.to_thread(
                inference.generate_images,
                ctx["cache"],
                job,
                recipe,
                on_step,
                cancel,
                settings,
                attempt,
                files.path,
                live.offer if live is not None else None,
            )
        except inference.Cancelled:
            return reply("cancelled")
        except (inference.UserFacingError, AdapterMissing) as exc:
            log.warning("job %s failed: %s", job_id, exc)
            metrics.note_failure(exc)
            return reply("failed", str(exc))


@task(jobs.TRAIN_LORA_SPEC)
async def train_lora(ctx: dict[str, Any], job: jobs.TrainJob) -> jobs.TrainResult:
    from gpu_worker import training_job  # torch, diffusers and peft: training workers only

    job_id: str = ctx["job_id"]
    attempt: int = ctx["job_try"]

    def reply(status: str, error: str | None = None) -> jobs.TrainResult:
        return jobs.TrainResult(
            training_id=job.training_id,
            status=status,  # type: ignore[arg-type]
            attempt=attempt,
            error=error,
        )

    async with _running(ctx, job_id, attempt) as cancel:
        publish = _publisher(ctx, job_id)

        def on_progress(step: int, total: int, loss: float) -> None:
            publish(jobs.ProgressEvent(type="step", step=step, total=total, loss=loss))

        def on_sample(step: int, png: bytes) -> None:
            publish(jobs.ProgressEvent(type="sample", step=step, total=job.params.steps, png=png))

        try:
            if cancel.is_set():
                return reply("cancelled")
            return await asyncio.to_thread(
                training_job.run_training, ctx["device"], job, on_progress, on_sample, cancel, attempt
            )
        except training_job.Cancelled:
            return reply("cancelled")
        except training_job.UserFacingError as exc:
            log.warning("training %s failed: %s", job_id, exc)
            metrics.note_failure(exc)
            return reply("failed", str(exc))


@task(jobs.UPSCALE_SPEC)
async def upscale(ctx: dict[str, Any], job: jobs.UpscaleJob) -> jobs.UpscaleResult:
    from gpu_worker.finish_jobs import run_upscale

    settings: Settings = ctx["settings"]
    async with job_lease(ctx["redis"], ctx["job_id"], settings.job_lease_s):
        return await asyncio.to_thread(run_upscale, job, settings, ctx["cache"], ctx["upscalers"])


@task(jobs.GRADE_SPEC)
async def grade(ctx: dict[str, Any], job: jobs.GradeJob) -> jobs.GradeResult:
    from gpu_worker.finish_jobs import run_grade

    return await asyncio.to_thread(run_grade, job, ctx["settings"].max_upload_pixels)


@task(jobs.EXPORT_SPEC)
async def export(ctx: dict[str, Any], job: jobs.ExportJob) -> jobs.ExportResult:
    from gpu_worker.finish_jobs import run_export

    return await asyncio.to_thread(run_export, job, ctx["settings"].max_upload_pixels)


@task(jobs.COMPOSE_GRID_SPEC)
async def compose_grid(ctx: dict[str, Any], job: jobs.ComposeGridJob) -> jobs.GridResult:
    from gpu_worker.grid import compose_grid as compose

    png = await asyncio.to_thread(compose, job.images, job.labels, blur=frozenset(job.blur))
    return jobs.GridResult(png=png)


@task(jobs.BOARD_SHEET_SPEC)
async def board_sheet(ctx: dict[str, Any], job: jobs.BoardSheetJob) -> jobs.BoardSheetResult:
    from gpu_worker.collage import board_sheet as compose

    return jobs.BoardSheetResult(png=await asyncio.to_thread(compose, job.images))


@task(jobs.COLLAGE_SPEC)
async def collage(ctx: dict[str, Any], job: jobs.CollageJob) -> jobs.CollageResult:
    from gpu_worker.collage import collage as compose

    return jobs.CollageResult(png=await asyncio.to_thread(compose, job.images, job.width, job.height))


@task(jobs.CONTROL_MAP_SPEC)
async def control_map(ctx: dict[str, Any], job: jobs.ControlMapJob) -> jobs.ControlMapResult:
    from gpu_worker.control_map import control_map as derive

    settings: Settings = ctx["settings"]
    limits = (settings.max_upload_pixels, settings.max_upload_bytes)
    png = await asyncio.to_thread(derive, job.image, job.mode, job.width, job.height, *limits)
    return jobs.ControlMapResult(png=png)


@task(jobs.ANNOTATE_SPEC)
async def annotate(ctx: dict[str, Any], job: jobs.ControlMapJob) -> jobs.AnnotateResult:
    from gpu_worker.annotators import run_annotate  # torch and transformers: inference workers only

    settings: Settings = ctx["settings"]
    async with job_lease(ctx["redis"], ctx["job_id"], settings.job_lease_s):
        return await asyncio.to_thread(run_annotate, job, settings, ctx["cache"])


@task(jobs.DESCRIBE_SPEC)
async def describe(ctx: dict[str, Any], job: jobs.DescribeJob) -> jobs.DescribeResult:
    from gpu_worker.describe import run_describe  # torch and transformers: inference workers only

    settings: Settings = ctx["settings"]
    async with job_lease(ctx["redis"], ctx["job_id"], settings.job_lease_s):
        return await asyncio.to_thread(run_describe, job, settings, ctx["cache"].device)


# One task per job of studio.jobs.JOBS; the worker settings register them by their job's queue.
TASKS: tuple[Task[Any, Any], ...] = (
    generate,
    upscale,
    train_lora,
    compose_grid,
    board_sheet,
    collage,
    grade,
    export,
    describe,
    control_map,
    annotate,
)


async def announce_end(ctx: dict[str, Any]) -> None:
    """After arq stored a result (or scheduled a retry): wake whoever waits on this job."""
    with contextlib.suppress(Exception):
        await _publish(ctx, ctx["job_id"], jobs.ProgressEvent(type="finished"))
