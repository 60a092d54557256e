"""/v1/trainings (LoRA training on your images) and /v1/models (what you may generate with)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request

from api import schemas
from api.auth import CallerDep
from api.present import Links, training_out
from api.routing import StrictJsonRoute
from api.uploads import read_upload
from studio.errors import DatasetRejected
from studio.forge import TrainingRequest
from studio.training import TrainingImage, TrainingOptions

router = APIRouter(tags=["models"], route_class=StrictJsonRoute)
TrainingId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post("/trainings", status_code=202, summary="Train a LoRA on images of a subject or style")
async def train(
    form: Annotated[schemas.TrainingForm, Form(media_type="multipart/form-data")],
    caller: CallerDep,
    request: Request,
) -> schemas.TrainingOut:
    """The dataset and settings are checked in full (3 or more images, each verified, none too
    small or too narrow; the name, trigger, quota and who may train) before the run is queued."""
    forge = caller.api.studio.forge
    settings = caller.api.settings
    await forge.check_may_train(caller.requester)  # before reading any image
    if len(form.images) > settings.max_training_images:
        raise DatasetRejected(
            f"Training takes at most {settings.max_training_images} images; got {len(form.images)}."
        )
    captions = form.captions or []
    if captions and len(captions) != len(form.images):
        raise DatasetRejected(
            f"Give one caption per image ({len(form.images)}), or none; got {len(captions)}."
        )
    images = []
    for number, upload in enumerate(form.images, start=1):
        data = await read_upload(upload, settings.max_upload_bytes, f"Image {number}")
        images.append(TrainingImage(data, captions[number - 1] if captions else None))
    request_ = TrainingRequest(
        name=form.name,
        trigger=form.trigger,
        base_model=form.base_model,
        options=TrainingOptions(
            steps=form.steps,
            rank=form.rank,
            learning_rate=form.learning_rate,
            resolution=form.resolution,
            text_encoder=form.text_encoder,
        ),
        visibility=form.visibility,
        new_version=form.new_version,
    )
    lora, plan = await forge.train(caller.requester, request_, images)
    caller.api.followers.training(lora.id)
    return training_out(lora, Links.of(request), plan.warnings)


@router.get("/trainings/{training_id}", summary="A training run: status, step, loss")
async def get_training(training_id: TrainingId, caller: CallerDep, request: Request) -> schemas.TrainingOut:
    lora = await caller.api.studio.forge.owned_run(caller.requester, training_id)
    if not lora.is_final:
        caller.api.followers.training(lora.id)
    return training_out(lora, Links.of(request))


@router.get("/models", summary="Base models, and the LoRAs you may use")
async def models(caller: CallerDep) -> schemas.ModelsOut:
    found = await caller.api.studio.models.available(caller.requester)
    return schemas.ModelsOut(
        base=[
            schemas.BaseModelOut(
                id=model.id,
                family=model.family,
                source_kind=model.source_kind,
                description=model.description,
                tags=list(model.tags),
                steps=model.default_steps,
                guidance=model.default_guidance,
                size=model.native_size,
                sampler=model.default_sampler,
                negative_prompt=model.takes_negative_prompt,
            )
            for model in found.base
        ],
        loras=[
            schemas.LoraModelOut(
                name=lora.name,
                version=lora.version,
                trigger=lora.trigger,
                base_model=lora.base_model,
                family=lora.family,
                visibility=lora.visibility,
                mine=lora.owner_id == caller.requester.id,
                created_at=lora.created_at,
            )
            for lora in found.loras
        ],
    )
