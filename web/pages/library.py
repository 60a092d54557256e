"""The library: the signed-in person's own work in one server (private included, only theirs):
projects with their images, favourites, trained models with their comparison and loss chart,
and finishes to download.

What belongs to a server is decided by the store's library reads (studio/store/library.py):
rows of this server, and the person's rows of none. Another person's project, model or finish,
or one of another server, answers 404 exactly as a missing one does: the scoped read comes first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response
from markupsafe import Markup

from api.present import CONTENT_TYPES
from studio.entities import Finish, ImageRecord, Lora, Requester
from studio.errors import NotFound
from studio.store.library import ProjectImages
from web.charts import loss_chart
from web.context import Page, SignedIn
from web.pages.media import thumbnail_url

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
PageNumber = Annotated[int, Query(ge=1, le=10_000)]

PROJECTS_PER_PAGE = 12
IMAGES_PER_PROJECT = 8  # on the library page; the project's own page shows them all, paged
IMAGES_PER_PAGE = 48
FAVOURITES_SHOWN = 48
MODELS_SHOWN = 50
FINISHES_SHOWN = 50

TRAINING_STATUS = {
    "queued": "Waiting to train",
    "running": "Training",
    "retrying": "Retrying",
    "done": "Ready",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


@dataclass(frozen=True)
class Thumb:
    """One image as a library tile: its page, its thumbnail and words for it."""

    image: ImageRecord
    page_url: str
    thumb_url: str
    alt: str

    @classmethod
    def of(cls, server_id: str, image: ImageRecord) -> Thumb:
        prompt = image.recipe.prompt.strip()
        alt = prompt if len(prompt) <= 120 else prompt[:119] + "…"
        return cls(
            image, image_page_url(server_id, image), thumbnail_url(server_id, image), alt or "An image"
        )


@dataclass(frozen=True)
class ProjectView:
    id: str
    name: str
    thumbs: list[Thumb]
    total: int
    url: str

    @property
    def more(self) -> int:
        return self.total - len(self.thumbs)


@dataclass(frozen=True)
class ModelView:
    lora: Lora
    status: str
    total_steps: int | None
    final_loss: str | None
    chart: Markup | None
    comparison_url: str | None
    created: str


@dataclass(frozen=True)
class FinishView:
    finish: Finish
    title: str
    details: str
    size: str | None
    created: str
    download_url: str | None  # None: a grade only previewed, no file yet
    source: Thumb | None


def image_page_url(server_id: str, image: ImageRecord) -> str:
    return f"/s/{server_id}/images/{image.generation_id}/{image.index}"


def project_url(server_id: str, project_id: str) -> str:
    return f"/s/{server_id}/library/projects/{project_id}"


def finish_file_url(server_id: str, finish_id: str) -> str:
    return f"/s/{server_id}/finishes/{finish_id}/file"


def comparison_url(server_id: str, lora_id: str) -> str:
    return f"/s/{server_id}/library/models/{lora_id}/comparison.png"


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


@router.get("/s/{server_id}/library")
async def library(server_id: str, current: SignedIn, page: PageNumber = 1) -> Response:
    requester = current.me.requester(server_id)
    server = current.me.server(server_id)
    rows = current.studio.store.library
    me = requester.id
    found = await rows.projects(me, server_id, PROJECTS_PER_PAGE + 1, (page - 1) * PROJECTS_PER_PAGE)
    shown = found[:PROJECTS_PER_PAGE]
    newest = await rows.newest_images(me, server_id, [p.id for p in shown], IMAGES_PER_PROJECT)
    projects = [_project_view(server_id, p.id, p.name, newest[p.id]) for p in shown]
    favourites = await _favourites(current, requester, server_id)
    models = [_model_view(server_id, lora) for lora in await rows.loras(me, server_id, MODELS_SHOWN)]
    finishes = [
        await _finish_view(current, requester, server_id, finish)
        for finish in await rows.finishes(me, server_id, FINISHES_SHOWN)
    ]
    return current.web.pages.render(
        current.request,
        "library.html",
        viewer=current.me,
        server=server,
        nav="library",
        projects=projects,
        page=page,
        has_next=len(found) > PROJECTS_PER_PAGE,
        favourites=favourites[:FAVOURITES_SHOWN],
        favourites_total=len(favourites),
        models=models,
        finishes=finishes,
    )


@router.get("/s/{server_id}/library/projects/{project_id}")
async def project_page(server_id: str, project_id: Id, current: SignedIn, page: PageNumber = 1) -> Response:
    requester = current.me.requester(server_id)
    server = current.me.server(server_id)
    rows = current.studio.store.library
    project = await rows.project(requester.id, server_id, project_id)
    if project is None:
        raise HTTPException(404)
    found = await rows.project_images(
        requester.id, server_id, project.id, IMAGES_PER_PAGE, (page - 1) * IMAGES_PER_PAGE
    )
    pages = max(1, -(-found.total // IMAGES_PER_PAGE))
    return current.web.pages.render(
        current.request,
        "library_project.html",
        viewer=current.me,
        server=server,
        nav="library",
        project=_project_view(server_id, project.id, project.name, found),
        page=page,
        pages=pages,
    )


@router.get("/s/{server_id}/library/models/{lora_id}/comparison.png")
async def model_comparison(server_id: str, lora_id: Id, current: SignedIn) -> Response:
    requester = current.me.requester(server_id)
    studio = current.studio
    if await studio.store.library.lora(requester.id, server_id, lora_id) is None:
        raise HTTPException(404)
    lora = await studio.forge.owned_run(requester, lora_id)
    if lora.comparison is None:
        raise HTTPException(404)
    png = await studio.artifacts.read(lora.comparison)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/s/{server_id}/finishes/{finish_id}/file")
async def finish_file(server_id: str, finish_id: Id, current: SignedIn) -> Response:
    requester = current.me.requester(server_id)
    studio = current.studio
    if await studio.store.library.finish(requester.id, server_id, finish_id) is None:
        raise HTTPException(404)
    finish, data = await studio.finishing.finish(requester, finish_id)
    if data is None:
        raise HTTPException(
            409,
            "That grade was only previewed, so there is no file yet: press Apply under its preview "
            "in Discord to make it at full size, then download it here.",
        )
    filename = f"atelier-{finish.kind}-{finish.id[:8]}{finish.suffix}"
    return Response(
        data,
        media_type=CONTENT_TYPES.get(finish.suffix, "application/octet-stream"),
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


def _project_view(server_id: str, project_id: str, name: str, found: ProjectImages) -> ProjectView:
    thumbs = [Thumb.of(server_id, image) for image in found.images]
    return ProjectView(project_id, name, thumbs, found.total, project_url(server_id, project_id))


async def _favourites(current: Page, requester: Requester, server_id: str) -> list[Thumb]:
    """The person's favourites here, newest first: those they may still see (an image made private
    or flagged since is left out, as its file would not be served to them)."""
    studio = current.studio
    shown = []
    for image in reversed(await studio.refine.favourites(requester)):
        if not image.visible_to(requester):
            continue
        if image.owner_id != requester.id and image.index in await studio.store.policy.flagged_indices(
            image.generation_id
        ):
            continue
        shown.append(Thumb.of(server_id, image))
    return shown


def _total_steps(lora: Lora) -> int | None:
    try:
        steps = json.loads(lora.params_json).get("steps")
    except (ValueError, AttributeError):
        return None
    return steps if isinstance(steps, int) else None


def _model_view(server_id: str, lora: Lora) -> ModelView:
    total = _total_steps(lora)
    final = lora.losses[-1] if lora.losses else lora.loss
    return ModelView(
        lora=lora,
        status=TRAINING_STATUS.get(lora.status, lora.status),
        total_steps=total,
        final_loss=f"{final:.4g}" if final is not None else None,
        chart=loss_chart(lora.losses, total),
        comparison_url=comparison_url(server_id, lora.id) if lora.comparison else None,
        created=when(lora.created_at),
    )


def _finish_details(finish: Finish) -> tuple[str, str]:
    params = json.loads(finish.params_json or "{}")
    if finish.kind == "upscale":
        method = f" ({finish.method})" if finish.method else ""
        return "Upscale", f"{params.get('factor', '?')}x{method}"
    if finish.kind == "grade":
        preset = params.get("preset")
        changed = [
            f"{name} {value:+g}"
            for name, value in params.items()
            if name not in ("preset", "seed") and isinstance(value, int | float) and value
        ]
        words = [f"preset {preset}"] if preset else []
        words += [", ".join(changed)] if changed else []
        return "Grade", "; ".join(words) or "no change"
    preset = params.get("preset", "?")
    fmt = params.get("format") or finish.suffix.lstrip(".")
    return "Export", f"{preset}, {fmt}"


async def _finish_view(current: Page, requester: Requester, server_id: str, finish: Finish) -> FinishView:
    title, details = _finish_details(finish)
    source = None
    if finish.source_image is not None:
        try:
            image = await current.studio.store.image(finish.source_image)
        except NotFound:  # erased since
            image = None
        if image is not None and image.visible_to(requester):
            source = Thumb.of(server_id, image)
    size = f"{finish.width}×{finish.height}" if finish.width and finish.height else None
    ready = finish.artifact is not None
    return FinishView(
        finish=finish,
        title=title,
        details=details,
        size=size,
        created=when(finish.created_at),
        download_url=finish_file_url(server_id, finish.id) if ready else None,
        source=source,
    )
