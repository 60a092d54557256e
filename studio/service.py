"""Use cases: the one place that turns a request into stored state and queued work.

Front ends (CLI, Discord bot, REST API) call these and render the outcome; they never touch
SQL, the queue or pixels themselves.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from studio import jobs
from studio.artifacts import Artifacts, digest
from studio.catalogue import Catalogue
from studio.entities import Generation, ImageRecord
from studio.errors import GenerationCancelled, GenerationFailed, NotFound
from studio.queue import JobQueue, JobResultMissing
from studio.recipe import Draft, Recipe, parse_prompt, resolve
from studio.settings import Settings
from studio.store import Store
from studio.store.repository import new_id
from studio.uploads import inspect_image

log = logging.getLogger(__name__)

ProgressHandler = Callable[[jobs.ProgressEvent], Awaitable[None]]


@dataclass(frozen=True)
class Requester:
    """Who asks: a stable id ("cli:alice", "discord:1234") and a display name."""

    id: str
    name: str


@dataclass(frozen=True)
class Finished:
    generation: Generation
    images: list[ImageRecord]


def failure_reason(value: Any) -> str:
    """Words for a failed arq job's result (our serializer stores exceptions as name + message)."""
    if isinstance(value, dict):
        message = str(value.get("message") or "").strip()
        name = str(value.get("error") or "")
        if name == "TimeoutError":
            return "the job took longer than the worker's time limit"
        return message or name or "the worker failed"
    return str(value) or "the worker failed"


class Studio:
    def __init__(
        self, settings: Settings, catalogue: Catalogue, store: Store, queue: JobQueue, artifacts: Artifacts
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.store = store
        self.queue = queue
        self.artifacts = artifacts

    # Generate

    def plan(self, text: str, options: Draft | None = None, init_image: str | None = None) -> Recipe:
        """The recipe a prompt with inline flags and explicit options asks for (options win)."""
        draft = parse_prompt(text)
        if options is not None:
            draft = draft.merged(options)
        return resolve(draft, self.catalogue, secrets.randbits(32), init_image)

    async def imagine(
        self,
        requester: Requester,
        text: str,
        options: Draft | None = None,
        project: str = "default",
        init_image: bytes | None = None,
    ) -> Generation:
        """Validate, record and enqueue a generation. Invalid input raises before anything is stored."""
        init_sha = None
        if init_image is not None:
            inspect_image(init_image, self.settings.max_upload_bytes, self.settings.max_upload_pixels)
            init_sha = digest(init_image)
        recipe = self.plan(text, options, init_sha)
        model = self.catalogue.get(recipe.model)
        if init_image is not None:  # stored only once everything else is known to be valid
            await asyncio.to_thread(self.artifacts.put, init_image, ".img")
        await self.store.ensure_user(requester.id, requester.name)
        found = await self.store.project_by_name(requester.id, project)
        project_row = found or await self.store.create_project(requester.id, project)
        generation_id = new_id()
        await self.store.add_generation(generation_id, project_row.id, requester.id, recipe)
        payload = jobs.GenerateJob(
            generation_id=generation_id,
            recipe=recipe.model_dump(mode="json"),
            model=jobs.ModelRef(id=model.id, family=model.family, source=model.source, variant=model.variant),
            init_image=init_image,
        )
        try:
            await self.queue.enqueue(jobs.INFERENCE, jobs.GENERATE, generation_id, payload.model_dump())
        except BaseException:
            await self.store.delete_generation(generation_id)
            raise
        return await self.store.get_generation(generation_id)

    async def position(self, generation_id: str) -> int | None:
        return await self.queue.position(jobs.INFERENCE, generation_id)

    async def follow(self, generation_id: str, on_progress: ProgressHandler | None = None) -> Finished:
        """Wait for a generation to end, relay progress, record its images once and return them."""
        known = await self.store.get_generation(generation_id)
        if known.is_final:
            return await self._outcome(known)

        async def relay(event: jobs.ProgressEvent) -> None:
            if event.type == "started":
                await self.store.mark_running(generation_id, event.attempt)
            if on_progress is not None:
                await on_progress(event)

        try:
            success, value = await self.queue.wait(generation_id, relay)
        except JobResultMissing:
            await self.store.end_generation(generation_id, "failed", "the job's result expired or was lost")
            raise GenerationFailed(generation_id, "the job's result expired or was lost") from None
        return await self._record(generation_id, success, value)

    async def collect(self) -> list[Finished]:
        """Record every unfinished generation whose job has ended (e.g. while this process was down)."""
        finished = []
        for generation in await self.store.unfinished_generations():
            found = await self.queue.result(generation.id)
            if found is None:
                if not await self.queue.exists(generation.id):
                    await self.store.end_generation(generation.id, "failed", "the job was lost")
                continue
            try:
                finished.append(await self._record(generation.id, *found))
            except (GenerationFailed, GenerationCancelled):
                continue
        return finished

    async def _outcome(self, generation: Generation) -> Finished:
        if generation.status == "cancelled":
            raise GenerationCancelled(generation.id)
        if generation.status == "failed":
            raise GenerationFailed(generation.id, generation.error or "unknown error")
        return Finished(generation, await self.store.images_of(generation.id))

    async def _record(self, generation_id: str, success: bool, value: Any) -> Finished:
        if not success or not isinstance(value, dict) or "status" not in value:
            reason = failure_reason(value)
            await self.store.end_generation(generation_id, "failed", reason)
            raise GenerationFailed(generation_id, reason)
        result = jobs.GenerateResult.model_validate(value)
        if result.status == "cancelled":
            await self.store.end_generation(generation_id, "cancelled", None)
            raise GenerationCancelled(generation_id)
        if result.status == "failed":
            await self.store.end_generation(generation_id, "failed", result.error)
            raise GenerationFailed(generation_id, result.error or "unknown error")
        generation = await self.store.get_generation(generation_id)
        if generation.status != "done":
            pngs = [image.png for image in sorted(result.images, key=lambda i: i.index)]
            shas = [await asyncio.to_thread(self.artifacts.put, png) for png in pngs]
            grid_sha = await self._grid(generation_id, pngs) if len(pngs) > 1 else shas[0]
            if grid_sha is None:
                log.warning("generation %s: recorded without a grid", generation_id)
            records = [(i, sha, generation.recipe.for_image(i)) for i, sha in enumerate(shas)]
            await self.store.finish_generation(
                generation_id,
                records,
                grid_sha,
                result.pipeline_seconds,
                result.attempt,
                load_seconds=result.load_seconds,
            )
            # Recorded: the copy in Redis is only kept a short while (the PNGs are large).
            await self.queue.expire_result(generation_id, self.settings.recorded_result_ttl_s)
        return await self._outcome(await self.store.get_generation(generation_id))

    async def _grid(self, generation_id: str, pngs: list[bytes]) -> str | None:
        """A numbered grid, composed by a worker on the post queue (pixel work stays off this loop).

        The grid is a convenience: if it fails, the images are recorded without one.
        """
        job_id = jobs.grid_job_id(generation_id)
        payload = jobs.ComposeGridJob(images=pngs)
        await self.queue.enqueue(jobs.POST, jobs.COMPOSE_GRID, job_id, payload.model_dump())
        try:
            success, value = await self.queue.wait(job_id, timeout=self.settings.grid_timeout_s)
        except (JobResultMissing, TimeoutError):
            log.warning("no grid for generation %s: no post worker answered in time", generation_id)
            return None
        await self.queue.expire_result(job_id, self.settings.recorded_result_ttl_s)
        if not success:
            log.error("grid for generation %s failed: %s", generation_id, failure_reason(value))
            return None
        grid = jobs.ComposeGridResult.model_validate(value)
        return await asyncio.to_thread(self.artifacts.put, grid.png)

    async def cancel(self, requester: Requester, generation_id: str) -> None:
        generation = await self.store.get_generation(generation_id)
        if generation.owner_id != requester.id:
            raise NotFound(f"No generation with id {generation_id}.")
        if not generation.is_final:
            await self.queue.request_cancel(generation_id)

    async def history(self, requester: Requester | None = None, limit: int = 20) -> list[Generation]:
        return await self.store.list_generations(requester.id if requester else None, limit)
