"""A generation's outcome: followed while it runs, recorded once when its job ends.

A job lost by Redis is queued again from what SQLite holds (bounded by ``MAX_REQUEUES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from studio import jobs, metrics
from studio.artifacts import ArtifactStore
from studio.entities import Generation, ImageRecord, Requester
from studio.errors import GenerationCancelled, GenerationFailed, StudioError
from studio.generations import Generations
from studio.outage import QUEUE_AWAY, REDIS_DOWN
from studio.queue import JobQueue, JobResultMissing, failure_reason
from studio.settings import Settings
from studio.store import Store

log = logging.getLogger(__name__)

ProgressHandler = Callable[[jobs.ProgressEvent], Awaitable[None]]
MAX_REQUEUES = 3  # a generation whose job vanished from Redis is queued again this often at most
VANISHED_RECHECK_S = 1.0  # a job running with no record left: how often to look for its result


@dataclass(frozen=True)
class Finished:
    generation: Generation
    images: list[ImageRecord]


class Results:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        queue: JobQueue,
        artifacts: ArtifactStore,
        generations: Generations,  # rebuilds a lost job exactly as it was first queued
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.artifacts = artifacts
        self.generations = generations

    async def follow(
        self,
        generation_id: str,
        on_progress: ProgressHandler | None = None,
        outage_limit: float | None = None,
    ) -> Finished:
        """Wait for a generation to end, relay progress, record its images once and return them.

        A Redis outage is waited out (JobQueue.wait); after ``outage_limit`` seconds of one,
        QueueUnavailable (the job goes on, and a later follow or collect records it).
        """

        async def relay(event: jobs.ProgressEvent) -> None:
            if event.type == "started":
                await self.store.mark_running(generation_id, event.attempt)
            if on_progress is not None:
                await on_progress(event)

        while True:
            known = await self.store.get_generation(generation_id)
            if known.is_final:
                return await self._outcome(known)
            try:
                success, value = await self.queue.wait(generation_id, relay, outage_limit=outage_limit)
            except JobResultMissing:
                try:
                    if not await self._requeue_vanished(generation_id):
                        await asyncio.sleep(VANISHED_RECHECK_S)
                except QUEUE_AWAY:
                    pass  # Redis went away again: wait() rides the outage out, then we look again
                continue
            return await self._record(generation_id, success, value)

    async def collect(self) -> list[Finished]:
        """Record every unfinished generation whose job has ended (e.g. while this process was down).

        One whose job vanished from Redis is queued again (``_requeue_vanished``).
        """
        finished = []
        for generation in await self.store.unfinished_generations():
            found = await self.queue.result(generation.id)
            if found is None:
                if not await self.queue.exists(generation.id):
                    with contextlib.suppress(GenerationFailed, GenerationCancelled, *QUEUE_AWAY):
                        await self._requeue_vanished(generation.id)
                continue
            try:
                finished.append(await self._record(generation.id, *found))
            except (GenerationFailed, GenerationCancelled):
                continue
        return finished

    async def _requeue_vanished(self, generation_id: str) -> bool:
        """A generation whose job has neither a record nor a result in Redis: queue it again.

        Redis restarted from its append-only file loses up to its last second of writes, so a job
        enqueued just before can vanish; a result can also expire before anyone recorded it.
        SQLite holds everything the job needs, so it is rebuilt from there under the same job id
        (several front ends doing this at once enqueue it once: arq refuses an existing id).
        Bounded: after ``MAX_REQUEUES`` the generation fails (GenerationFailed) rather than loop;
        one cancelled meanwhile ends cancelled (GenerationCancelled). Redis errors (QUEUE_AWAY)
        propagate: nothing is decided while it is away. False: nothing to do yet, look again soon.
        """
        generation = await self.store.get_generation(generation_id)
        if generation.is_final:
            return True
        if await self.queue.in_progress(generation_id):
            # A worker runs it: its lease, written back after the restart, outlived the lost
            # record. Its result will come; should the worker die, the lease lapses and we requeue.
            return False
        if await self.queue.cancel_requested(generation_id):
            await self.store.end_generation(generation_id, "cancelled", None)
            raise GenerationCancelled(generation_id)
        try:
            payload = await self._rebuilt_job(generation)
        except QUEUE_AWAY:
            raise
        except (StudioError, OSError) as error:  # a LoRA deleted meanwhile, an artifact gone
            reason = f"its job was lost and could not be queued again ({error})"
            await self.store.end_generation(generation_id, "failed", reason)
            raise GenerationFailed(generation_id, reason) from None
        if not await self.store.count_requeue(generation_id, MAX_REQUEUES):
            reason = f"the queue lost its job {MAX_REQUEUES + 1} times; please try again later"
            await self.store.end_generation(generation_id, "failed", reason)
            raise GenerationFailed(generation_id, reason)
        owner = Requester(generation.owner_id, generation.owner_id, server=generation.server)
        lane = await self.generations.preferences.lane_for(owner)  # it re-enters in its owner's turn
        queued = await self.queue.enqueue(
            jobs.GENERATE,
            generation_id,
            payload,
            person=owner.id,
            lane=lane,
            cost=self.generations.cost_of(generation.recipe),
        )
        log.warning(
            "generation %s: its job had vanished from Redis; %s",
            generation_id,
            "queued it again" if queued else "another process queued it again",
        )
        return True

    async def _rebuilt_job(self, generation: Generation) -> dict[str, Any]:
        """The job ``Generations.start`` queued for this generation, rebuilt from the store and artifacts."""
        recipe = generation.recipe
        init = mask = None
        if recipe.init_image is not None:
            init = await self.artifacts.read(recipe.init_image, ".img")
        if recipe.mask is not None:
            mask = await self.artifacts.read(recipe.mask)
        # Its owner, as far as the LoRAs' visibility goes (the name is only ever displayed).
        owner = Requester(generation.owner_id, generation.owner_id, server=generation.server)
        return await self.generations.job_for(owner, generation.id, recipe, init, mask)

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
            metrics.generation_recorded("failed")
            raise GenerationFailed(generation_id, reason)
        result = jobs.GENERATE_SPEC.result_of(value)
        if result.status == "cancelled":
            await self.store.end_generation(generation_id, "cancelled", None)
            metrics.generation_recorded("cancelled")
            raise GenerationCancelled(generation_id)
        if result.status == "failed":
            await self.store.end_generation(generation_id, "failed", result.error)
            metrics.generation_recorded("failed")
            raise GenerationFailed(generation_id, result.error or "unknown error")
        generation = await self.store.get_generation(generation_id)
        if generation.status != "done":
            pngs = [image.png for image in sorted(result.images, key=lambda i: i.index)]
            shas = [await asyncio.to_thread(self.artifacts.put, png) for png in pngs]
            grid_sha = await self._grid(generation_id, pngs) if len(pngs) > 1 else shas[0]
            if grid_sha is None:
                log.warning("generation %s: recorded without a grid", generation_id)
            records = [(i, sha, generation.recipe.for_image(i)) for i, sha in enumerate(shas)]
            # Charged before it is marked done, keyed by the generation: a redelivery, a crash
            # between the two or a second front end recording it too charges it once.
            await self.generations.quotas.charge_generation(
                generation, result.pipeline_seconds + result.load_seconds
            )
            flagged = [image.index for image in result.images if image.flagged]
            if flagged:  # content policy: before it is done, so no one shows it unblurred
                safe = await self._grid(generation_id, pngs, blur=flagged)
                await self.store.policy.set_safe_grid(generation_id, safe or "")
            await self.store.finish_generation(
                generation_id,
                records,
                grid_sha,
                result.pipeline_seconds,
                result.attempt,
                load_seconds=result.load_seconds,
            )
            await self.store.policy.record_verdicts(
                generation_id, [(i.index, i.flagged, i.safety_label, i.safety_score) for i in result.images]
            )
            metrics.generation_recorded("done", generation.created_at)
            # Recorded: the copy in Redis is only kept a short while (the PNGs are large). If
            # Redis is away right now it simply keeps it for its full time to live.
            with contextlib.suppress(*REDIS_DOWN):
                await self.queue.expire_result(generation_id, self.settings.recorded_result_ttl_s)
        return await self._outcome(await self.store.get_generation(generation_id))

    async def _grid(self, generation_id: str, pngs: list[bytes], blur: list[int] | None = None) -> str | None:
        """A numbered grid, composed by a worker on the post queue (pixel work stays off this loop).

        The grid is a convenience: if it fails, the images are recorded without one.
        """
        try:
            result = await self.queue.run(
                jobs.COMPOSE_GRID_SPEC,
                jobs.ComposeGridJob(images=pngs, labels=len(pngs) > 1, blur=blur or []),
                timeout=self.settings.grid_timeout_s,
                what="The grid",
                job_id=jobs.safe_grid_job_id(generation_id) if blur else jobs.grid_job_id(generation_id),
            )
        except StudioError as error:
            log.warning("no grid for generation %s: %s", generation_id, error)
            return None
        except REDIS_DOWN as error:  # Redis went away meanwhile: the images matter, not the grid
            log.warning("no grid for generation %s: Redis went away (%s)", generation_id, error)
            return None
        return await asyncio.to_thread(self.artifacts.put, result.png)
