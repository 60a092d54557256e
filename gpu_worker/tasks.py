"""The arq job functions: thin coroutines that decode a payload, run the work in a thread, reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from gpu_worker.lease import job_lease
from studio import jobs
from studio.recipe import Recipe
from studio.settings import Settings

log = logging.getLogger(__name__)


async def _publish(ctx: dict[str, Any], job_id: str, event: jobs.ProgressEvent) -> None:
    settings: Settings = ctx["settings"]
    await ctx["redis"].publish(
        jobs.progress_channel(settings.queue_prefix, job_id), jobs.serialize(event.model_dump())
    )


async def _watch_cancel(ctx: dict[str, Any], job_id: str, flag: threading.Event) -> None:
    settings: Settings = ctx["settings"]
    key = jobs.cancel_key(settings.queue_prefix, job_id)
    while not flag.is_set():
        if await ctx["redis"].exists(key):
            flag.set()
            return
        await asyncio.sleep(0.2)


async def generate(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    from gpu_worker import inference  # torch and diffusers: inference workers only

    settings: Settings = ctx["settings"]
    job_id: str = ctx["job_id"]
    attempt: int = ctx["job_try"]
    job = jobs.GenerateJob.model_validate(payload)

    def reply(status: str, error: str | None = None) -> dict[str, Any]:
        return jobs.GenerateResult(
            generation_id=job.generation_id,
            status=status,
            attempt=attempt,
            error=error,  # type: ignore[arg-type]
        ).model_dump()

    async with job_lease(ctx["redis"], job_id, settings.job_lease_s):
        await _publish(ctx, job_id, jobs.ProgressEvent(type="started", attempt=attempt))
        cancel = threading.Event()
        watcher = asyncio.create_task(_watch_cancel(ctx, job_id, cancel))
        loop = asyncio.get_running_loop()

        def on_step(step: int, total: int) -> None:  # called from the pipeline thread
            event = jobs.ProgressEvent(type="step", step=step, total=total)
            asyncio.run_coroutine_threadsafe(_publish(ctx, job_id, event), loop)

        try:
            await asyncio.sleep(0)  # let the watcher look at the cancel flag once
            if cancel.is_set():
                return reply("cancelled")
            recipe = Recipe.model_validate(job.recipe)
            result = await asyncio.to_thread(
                inference.generate_images, ctx["cache"], job, recipe, on_step, cancel, settings, attempt
            )
            return result.model_dump()
        except inference.Cancelled:
            return reply("cancelled")
        except inference.UserFacingError as exc:
            log.warning("job %s failed: %s", job_id, exc)
            return reply("failed", str(exc))
        except asyncio.CancelledError:
            cancel.set()  # the worker is shutting down: stop the thread; arq retries the job
            raise
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def compose_grid(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    from gpu_worker.grid import compose_grid as compose

    job = jobs.ComposeGridJob.model_validate(payload)
    png = await asyncio.to_thread(compose, job.images, job.labels)
    return jobs.ComposeGridResult(png=png).model_dump()


async def board_sheet(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    from gpu_worker.collage import board_sheet as compose

    job = jobs.BoardSheetJob.model_validate(payload)
    return jobs.ComposeGridResult(png=await asyncio.to_thread(compose, job.images)).model_dump()


async def collage(ctx: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    from gpu_worker.collage import collage as compose

    job = jobs.CollageJob.model_validate(payload)
    png = await asyncio.to_thread(compose, job.images, job.width, job.height)
    return jobs.ComposeGridResult(png=png).model_dump()


async def announce_end(ctx: dict[str, Any]) -> None:
    """After arq stored a result (or scheduled a retry): wake whoever waits on this job."""
    with contextlib.suppress(Exception):
        await _publish(ctx, ctx["job_id"], jobs.ProgressEvent(type="finished"))
