"""Domain records as response bodies, with absolute URLs to their files."""

from __future__ import annotations

import json

from fastapi import Request

from api import schemas
from studio import eta, jobs
from studio.app import Studio
from studio.entities import ApiGeneration, Finish, Generation, ImageRecord, Lora
from studio.forge import Forge
from studio.recipe import Recipe

CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".avif": "image/avif",
}


class Links:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/") + "/v1"

    @classmethod
    def of(cls, request: Request) -> Links:
        """The configured public base (api_public_url), never the request's Host header: a
        forged Host would otherwise be echoed into every URL a client or webhook follows."""
        found: Links = request.app.state.links
        return found

    def generation(self, generation_id: str) -> str:
        return f"{self.base}/generations/{generation_id}"

    def image(self, generation_id: str, index: int) -> str:
        return f"{self.base}/images/{generation_id}/{index}"

    def image_recipe(self, generation_id: str, index: int) -> str:
        return f"{self.image(generation_id, index)}/recipe"

    def finish_file(self, finish_id: str) -> str:
        return f"{self.base}/finishes/{finish_id}/file"

    def finish_preview(self, finish_id: str) -> str:
        return f"{self.base}/finishes/{finish_id}/preview"

    def training(self, training_id: str) -> str:
        return f"{self.base}/trainings/{training_id}"


def recipe_out(recipe: Recipe) -> schemas.RecipeOut:
    return schemas.RecipeOut.model_validate(recipe.model_dump(mode="json"))


async def generation_out(
    studio: Studio, generation: Generation, links: Links, record: ApiGeneration | None = None
) -> schemas.GenerationOut:
    images = await studio.store.images_of(generation.id) if generation.status == "done" else []
    flagged = set(await studio.store.policy.flagged_indices(generation.id)) if images else set()
    position = (
        await studio.queue.position(jobs.INFERENCE, generation.id) if generation.status == "queued" else None
    )
    eta_seconds = await eta.shared(studio.store, studio.generations.routing).seconds(position)
    webhook = None
    if record is not None and record.webhook_url is not None:
        webhook = schemas.WebhookOut(
            status=record.webhook_status, attempts=record.webhook_attempts, error=record.webhook_error
        )
    return schemas.GenerationOut(
        id=generation.id,
        status=generation.status,
        error=generation.error,
        project_id=generation.project_id,
        private=generation.private,
        attempts=generation.attempts,
        queue_position=position,
        eta_seconds=None if eta_seconds is None else round(eta_seconds, 1),
        created_at=generation.created_at,
        started_at=generation.started_at,
        finished_at=generation.finished_at,
        prompt_text=generation.recipe.to_prompt_text(),
        recipe=recipe_out(generation.recipe),
        images=[image_out(image, links, image.index in flagged) for image in images],
        webhook=webhook,
        url=links.generation(generation.id),
    )


def image_out(image: ImageRecord, links: Links, flagged: bool = False) -> schemas.ImageOut:
    return schemas.ImageOut(
        index=image.index,
        seed=image.seed,
        width=image.width,
        height=image.height,
        public=image.public,
        flagged=flagged,
        url=links.image(image.generation_id, image.index),
        recipe_url=links.image_recipe(image.generation_id, image.index),
    )


def image_recipe_out(image: ImageRecord, mine: bool, links: Links) -> schemas.ImageRecipeOut:
    return schemas.ImageRecipeOut(
        generation_id=image.generation_id,
        index=image.index,
        image_id=image.id,
        seed=image.seed,
        width=image.width,
        height=image.height,
        public=image.public,
        mine=mine,
        parent_image_id=image.parent_image_id,
        created_at=image.created_at,
        prompt_text=image.recipe.to_prompt_text(),
        parameters=image.recipe.to_a1111(),
        recipe=recipe_out(image.recipe),
        url=links.image(image.generation_id, image.index),
    )


def finish_out(
    finish: Finish, links: Links, filename: str | None = None, quality: int | None = None
) -> schemas.FinishOut:
    return schemas.FinishOut(
        id=finish.id,
        kind=finish.kind,
        ready=finish.artifact is not None,
        source_image_id=finish.source_image,
        params=json.loads(finish.params_json),
        method=finish.method,
        width=finish.width,
        height=finish.height,
        content_type=CONTENT_TYPES.get(finish.suffix, "application/octet-stream"),
        filename=filename,
        quality=quality,
        created_at=finish.created_at,
        applied_at=finish.applied_at,
        file_url=links.finish_file(finish.id),
        preview_url=links.finish_preview(finish.id) if finish.preview else None,
    )


def training_out(lora: Lora, links: Links, warnings: list[str] | None = None) -> schemas.TrainingOut:
    return schemas.TrainingOut(
        id=lora.id,
        name=lora.name,
        version=lora.version,
        trigger=lora.trigger,
        base_model=lora.base_model,
        family=lora.family,
        visibility=lora.visibility,
        status=lora.status,
        step=lora.step,
        steps=Forge.params_of(lora).steps,
        loss=lora.loss,
        losses=list(lora.losses),
        attempts=lora.attempts,
        error=lora.error,
        image_count=lora.image_count,
        model_ready=lora.usable,
        created_at=lora.created_at,
        started_at=lora.started_at,
        finished_at=lora.finished_at,
        warnings=warnings or [],
        url=links.training(lora.id),
    )
