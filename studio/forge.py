"""The Forge's use cases: train LoRA models, follow their runs, and serve them as custom models."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from studio import jobs
from studio.artifacts import ArtifactStore
from studio.catalogue import Catalogue, ModelEntry
from studio.entities import Lora, Project, Requester
from studio.errors import (
    AlreadyFinished,
    DatasetRejected,
    InvalidRecipe,
    NameTaken,
    NotFound,
    NotYours,
    QuotaExceeded,
    StudioError,
)
from studio.outage import QUEUE_AWAY
from studio.queue import JobQueue, JobResultMissing, failure_reason
from studio.recipe import Recipe
from studio.settings import Settings
from studio.store import Store
from studio.store.repository import new_id
from studio.training import (
    Source,
    TrainingImage,
    TrainingOptions,
    caption_warnings,
    captions_for,
    check_count,
    check_name,
    check_trigger,
    prepare_image,
    training_params,
)

log = logging.getLogger(__name__)

# Called on every change a follower sees: the run as stored now, and the event behind it if any
# (a 'sample' event carries a checkpoint's image).
TrainingHandler = Callable[[Lora, jobs.ProgressEvent | None], Awaitable[None]]
QUOTA_WINDOW_S = 86400.0
LIVENESS_CHECK_S = 5.0  # how often a follower checks that a running job still has a worker
MAX_REQUEUES = 3  # a run whose job vanished from Redis is queued again this often at most
VANISHED_RECHECK_S = 1.0  # a job running with no record left: how often to look for its result


@dataclass(frozen=True)
class TrainingRequest:
    name: str
    trigger: str
    base_model: str | None = None
    options: TrainingOptions = field(default_factory=TrainingOptions)
    visibility: Literal["private", "server"] = "private"
    new_version: bool = False


@dataclass(frozen=True)
class TrainingPlan:
    """A checked request with its prepared dataset, ready to be queued."""

    name: str
    version: int
    trigger: str
    model: ModelEntry
    params: jobs.TrainingParams
    visibility: Literal["private", "server"]
    images: list[bytes]  # PNGs at the training resolution
    captions: list[str]
    warnings: list[str]


class Forge:
    def __init__(
        self,
        settings: Settings,
        catalogue: Catalogue,
        store: Store,
        queue: JobQueue,
        artifacts: ArtifactStore,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.store = store
        self.queue = queue
        self.artifacts = artifacts

    # Who may train

    async def set_training_role(self, requester: Requester, role_id: str, on: bool) -> list[str]:
        if not (requester.admin and requester.server):
            raise NotYours("Only server admins (Manage Server) can choose who may train models.")
        await self.store.ensure_user(requester.id, requester.name)
        await self.store.loras.set_training_role(requester.server, role_id, requester.id, on)
        return await self.store.loras.training_roles(requester.server)

    async def check_may_train(self, requester: Requester) -> None:
        """The server's training roles (none set: everyone), then the person's quota."""
        if requester.server and not requester.admin:
            roles = await self.store.loras.training_roles(requester.server)
            if roles and not requester.roles.intersection(roles):
                listed = ", ".join(f"<@&{role}>" for role in roles)
                raise NotYours(f"On this server only these roles may train models: {listed}.")
        if await self.store.loras.in_flight(requester.id):
            raise QuotaExceeded("You already have a training run in progress; one at a time, please.")
        started = await self.store.loras.started_since(requester.id, time.time() - QUOTA_WINDOW_S)
        if started >= self.settings.training_quota_per_day:
            raise QuotaExceeded(
                f"You have started {started} training runs in the last 24 hours; the limit is "
                f"{self.settings.training_quota_per_day}. Please try again later."
            )

    # Training

    async def plan(
        self, requester: Requester, request: TrainingRequest, images: list[TrainingImage]
    ) -> TrainingPlan:
        """Check everything and prepare the dataset; nothing is stored or queued yet."""
        name = check_name(request.name)
        trigger = check_trigger(request.trigger)
        model = self.catalogue.get(request.base_model)
        params = training_params(
            request.options,
            model,
            secrets.randbits(32),
            batch_size=self.settings.training_batch_size,
            gradient_accumulation=self.settings.training_gradient_accumulation,
            mixed_precision=self.settings.training_mixed_precision,
            text_encoder=self.settings.training_text_encoder,
            max_steps=self.settings.max_training_steps,
        )
        await self.check_may_train(requester)
        version = await self._version_for(requester, name, request.new_version)
        check_count(len(images), self.settings.max_training_images)
        prepared = await asyncio.to_thread(self._prepare, images, params.resolution)
        return TrainingPlan(
            name=name,
            version=version,
            trigger=trigger,
            model=model,
            params=params,
            visibility=request.visibility,
            images=prepared,
            captions=captions_for(trigger, images),
            warnings=caption_warnings(trigger, images),
        )

    async def start(
        self,
        requester: Requester,
        plan: TrainingPlan,
        project: Project | None = None,
        deliver_to: str | None = None,
    ) -> Lora:
        """Record the run and queue it (the quota is checked again: plans can race)."""
        await self.check_may_train(requester)
        model = plan.model
        lora_id = new_id()
        # The prepared dataset is kept, so a job that vanishes from Redis can be rebuilt.
        digests = [await asyncio.to_thread(self.artifacts.put, image) for image in plan.images]
        await self.store.ensure_user(requester.id, requester.name)
        await self.store.loras.add(
            lora_id,
            owner_id=requester.id,
            project_id=project.id if project else None,
            server=requester.server,
            name=plan.name,
            version=plan.version,
            trigger=plan.trigger,
            base_model=model.id,
            family=model.family,
            visibility=plan.visibility,
            params_json=plan.params.model_dump_json(),
            image_count=len(plan.images),
            channel_id=deliver_to,
            dataset_json=json.dumps({"images": digests, "captions": plan.captions}),
        )
        payload = self._train_job(lora_id, model, plan.trigger, plan.params, plan.images, plan.captions)
        try:
            await self.queue.enqueue(jobs.TRAIN_LORA, lora_id, payload)
        except BaseException:
            await self.store.loras.delete_unqueued(lora_id)
            raise
        return await self.store.loras.get(lora_id)

    def _train_job(
        self,
        lora_id: str,
        model: ModelEntry,
        trigger: str,
        params: jobs.TrainingParams,
        images: list[bytes],
        captions: list[str],
    ) -> dict[str, Any]:
        """A run's job for the worker: the one builder for start and for a job queued again."""
        payload = jobs.TrainJob(
            training_id=lora_id,
            model=model.ref(),
            params=params,
            images=images,
            captions=captions,
            sample_recipe=self._sample_recipe(model, trigger, params).model_dump(mode="json"),
        )
        return payload.model_dump()

    async def _rebuilt_job(self, lora: Lora) -> dict[str, Any]:
        """The job ``start`` queued for this run, rebuilt from the store and artifacts."""
        dataset = await self.store.loras.dataset(lora.id)
        if dataset is None:
            raise NotFound("its dataset was not kept")
        model = self.catalogue.get(lora.base_model)
        images = [await self.artifacts.read(sha) for sha in dataset["images"]]
        return self._train_job(
            lora.id, model, lora.trigger, self.params_of(lora), images, dataset["captions"]
        )

    async def train(
        self,
        requester: Requester,
        request: TrainingRequest,
        images: list[TrainingImage],
        project: Project | None = None,
        deliver_to: str | None = None,
    ) -> tuple[Lora, TrainingPlan]:
        plan = await self.plan(requester, request, images)
        return await self.start(requester, plan, project, deliver_to), plan

    async def dataset(
        self, requester: Requester, source: Source, project: Project | None, uploads: list[TrainingImage]
    ) -> list[TrainingImage]:
        """The images to train on: the uploads, or the person's favourites or the board of a project."""
        if source == "attachments":
            if not uploads:
                raise DatasetRejected(
                    "Attach the images to train on (or choose favourites or the mood board)."
                )
            return uploads
        if project is None:
            raise DatasetRejected(f"Training from the {source} works inside an Atelier project thread.")
        if source == "favourites":
            favourites = await self.store.favourites_of(requester.id, project.id)
            check_count(len(favourites), self.settings.max_training_images)  # before reading any
            return [TrainingImage(await self.artifacts.read(image.artifact)) for image in favourites]
        items = await self.store.board(project.id)
        check_count(len(items), self.settings.max_training_images)
        return [TrainingImage(await self.artifacts.read(item.artifact, ".img")) for item in items]

    async def _version_for(self, requester: Requester, name: str, new_version: bool) -> int:
        """1 for a new name; the next version for the owner's own name when asked; else NameTaken."""
        if name.lower() in self.catalogue.entries:
            raise NameTaken(name)
        live = await self.store.loras.named(name)
        if any(lora.owner_id != requester.id for lora in live):
            raise NameTaken(name)
        if live and not new_version:
            raise InvalidRecipe(
                "name",
                f"You already have a model named `{name}`; choose another name, or set new_version to "
                f"train version {live[0].version + 1}.",
            )
        return await self.store.loras.last_version(name) + 1

    def _prepare(self, images: list[TrainingImage], resolution: int) -> list[bytes]:
        return [
            prepare_image(
                image.data,
                resolution,
                self.settings.max_upload_bytes,
                self.settings.max_upload_pixels,
                f"image {number}",
            )
            for number, image in enumerate(images, start=1)
        ]

    def _sample_recipe(self, model: ModelEntry, trigger: str, params: jobs.TrainingParams) -> Recipe:
        """What the checkpoints and the final comparison show: the trigger alone, on fixed seeds."""
        return Recipe(
            model=model.id,
            family=model.family,
            prompt=trigger,
            seed=params.seed % (2**32 - 8),
            steps=model.default_steps,
            guidance=model.default_guidance,
            sampler=model.default_sampler,  # a flow family (Flux) samples with its own only
            width=params.resolution,
            height=params.resolution,
            batch=self.settings.training_samples,
        )

    # Following a run

    async def follow(self, lora_id: str, on_update: TrainingHandler | None = None) -> Lora:
        """Wait for a run to end, keeping its stored state (step, loss, retrying) current.

        A run whose worker died shows as `retrying` until a worker takes it up again, so a
        stall is never silent; arq gives up after ``training_max_tries`` and the run fails.
        """

        async def notify(event: jobs.ProgressEvent | None = None) -> None:
            if on_update is not None:
                await on_update(await self.store.loras.get(lora_id), event)

        async def relay(event: jobs.ProgressEvent) -> None:
            if event.type == "started":
                await self.store.loras.mark_running(lora_id, event.attempt)
            elif event.type == "step":
                await self.store.loras.record_step(lora_id, event.step, event.loss)
            await notify(event)

        while True:
            lora = await self.store.loras.get(lora_id)
            if lora.is_final:
                return lora
            try:
                success, value = await self.queue.wait(lora_id, relay, timeout=LIVENESS_CHECK_S)
            except TimeoutError:
                if lora.status == "running" and not await self.queue.in_progress(lora_id):
                    reason = "the training worker stopped; the run restarts when a training worker is free"
                    if await self.store.loras.mark_retrying(lora_id, reason):
                        log.warning("training %s: %s", lora_id, reason)
                        await notify()
                continue
            except JobResultMissing:
                try:
                    if not await self._requeue_vanished(lora_id):
                        await asyncio.sleep(VANISHED_RECHECK_S)
                except QUEUE_AWAY:
                    continue  # Redis went away again: wait() rides the outage out, then we look again
                if (await self.store.loras.get(lora_id)).is_final:
                    await notify()
                continue
            await self._record(lora_id, success, value)
            await notify()

    async def _requeue_vanished(self, lora_id: str) -> bool:
        """A run whose job has neither a record nor a result in Redis: queue it again.

        As Results._requeue_vanished does for generations: rebuilt from the store under the same
        job id (arq enqueues an id once), at most ``MAX_REQUEUES`` times, never once cancelled;
        otherwise the run ends failed or cancelled here. Redis errors (QUEUE_AWAY) propagate.
        False: a worker still holds it, look again soon.
        """
        lora = await self.store.loras.get(lora_id)
        if lora.is_final:
            return True
        if await self.queue.in_progress(lora_id):
            return False  # its worker runs on with the lease it wrote back: the result will come
        if await self.queue.cancel_requested(lora_id):
            await self.store.loras.end(lora_id, "cancelled", None)
            return True
        try:
            payload = await self._rebuilt_job(lora)
        except (StudioError, OSError) as error:  # its base model left the catalogue, an artifact gone
            await self.store.loras.end(
                lora_id, "failed", f"its job was lost and could not be queued again ({error})"
            )
            return True
        if not await self.store.loras.count_requeue(lora_id, MAX_REQUEUES):
            reason = f"the queue lost its job {MAX_REQUEUES + 1} times; please try again later"
            await self.store.loras.end(lora_id, "failed", reason)
            return True
        queued = await self.queue.enqueue(jobs.TRAIN_LORA, lora_id, payload)
        log.warning(
            "training %s: its job had vanished from Redis; %s",
            lora_id,
            "queued it again" if queued else "another process queued it again",
        )
        return True

    async def _record(self, lora_id: str, success: bool, value: object) -> None:
        if not success or not isinstance(value, dict) or "status" not in value:
            await self.store.loras.end(lora_id, "failed", failure_reason(value))
            return
        result = jobs.TRAIN_LORA_SPEC.result_of(value)
        if result.status != "done" or result.weights is None or result.kohya is None:
            await self.store.loras.end(
                lora_id, "cancelled" if result.status == "cancelled" else "failed", result.error
            )
            return
        put = self.artifacts.put
        digests: dict[str, str | None] = {
            "weights": await asyncio.to_thread(put, result.weights, ".safetensors"),
            "kohya": await asyncio.to_thread(put, result.kohya, ".safetensors"),
            "sample": await asyncio.to_thread(put, result.lora_images[0]) if result.lora_images else None,
            "comparison": await asyncio.to_thread(put, result.comparison) if result.comparison else None,
        }
        await self.store.loras.finish(
            lora_id, digests, len(result.weights), result.losses, result.seconds, result.attempt
        )
        await self.queue.expire_result(lora_id, self.settings.recorded_result_ttl_s)

    async def cancel(self, requester: Requester, lora_id: str) -> Lora:
        """Stop a queued or running run: its owner, a moderator or an admin of its server."""
        lora = await self.store.loras.get(lora_id)
        if not self._may_manage(requester, lora):
            raise NotYours("Only the person who started this training, or an admin, can cancel it.")
        if lora.is_final:
            raise AlreadyFinished(f"That training run has already ended ({lora.status}).")
        await self.queue.request_cancel(lora_id)
        return lora

    @staticmethod
    def _may_manage(requester: Requester, lora: Lora) -> bool:
        """Cancel a run: its owner, or a moderator or admin of the server it runs for."""
        if requester.operator or requester.id == lora.owner_id:
            return True
        return (requester.admin or requester.moderator) and requester.server == lora.server

    async def owned_run(self, requester: Requester, lora_id: str) -> Lora:
        """A training run of the requester's; another person's does not exist for them."""
        lora = await self.store.loras.get(lora_id)
        if lora.owner_id != requester.id or lora.imported:  # an imported model had no run
            raise NotFound("That training run does not exist.")
        return lora

    @staticmethod
    def params_of(lora: Lora) -> jobs.TrainingParams:
        return jobs.TrainingParams.model_validate(json.loads(lora.params_json))
