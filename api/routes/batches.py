"""/v1/batches: one generation per row of data, from a prompt template (avatars, ads...)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from fastapi import APIRouter, Request

from api import schemas
from api.auth import CallerDep
from api.batching import parse_template, rows_from_csv
from api.generating import destination, draft_of, launch
from api.present import Links
from api.routing import StrictJsonRoute
from studio.entities import Generation
from studio.errors import InvalidRecipe, StudioError
from studio.recipe import Recipe

router = APIRouter(tags=["generations"], route_class=StrictJsonRoute)
log = logging.getLogger(__name__)
# One batch of a person's at a time in this process, so two cannot both pass the capacity check.
_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)


@router.post("/batches", status_code=202, summary="One generation per row: a template and its data")
async def create_batch(body: schemas.BatchIn, caller: CallerDep, request: Request) -> schemas.BatchOut:
    """All or nothing: every row is filled and planned, the LoRAs and the person's capacity
    (`api_batch_max_jobs` jobs in flight, this batch included) checked, before the first is queued."""
    studio = caller.api.studio
    settings = caller.api.settings
    if (body.rows is None) == (body.csv is None):
        raise InvalidRecipe(
            "rows", "Give the rows as `rows` (a list of objects) or as `csv` text, one of the two."
        )
    template = parse_template(body.template)
    rows = body.rows if body.rows is not None else rows_from_csv(body.csv or "")
    if len(rows) > settings.api_max_batch_rows:
        raise InvalidRecipe(
            "rows", f"A batch holds at most {settings.api_max_batch_rows} rows; this one has {len(rows)}."
        )
    where = await destination(caller, body.project, body.private, body.webhook_url, body.discord_thread_id)
    options = draft_of(body)
    recipes: list[Recipe] = []
    for number, row in enumerate(rows, start=1):
        text = template.fill(row, number)
        try:
            recipes.append(studio.plan(text, options, defaults=where.defaults))
        except StudioError as error:
            raise InvalidRecipe("rows", f"Row {number}: {error}") from None
    checked: set[tuple[object, ...]] = set()
    for recipe in recipes:  # rows may name their own LoRAs with --lora
        if recipe.loras and (recipe.family, recipe.loras) not in checked:
            await studio.forge.adapters_for(caller.requester, recipe, share=False)
            checked.add((recipe.family, recipe.loras))
    async with _locks[caller.requester.id]:
        await studio.check_capacity(caller.requester, len(recipes), settings.api_batch_max_jobs)
        started: list[Generation] = []
        try:
            for recipe in recipes:
                started.append(await launch(caller, where, recipe, capacity_checked=True))
        except BaseException:
            await _withdraw(caller, started)
            raise
    links = Links.of(request)
    return schemas.BatchOut(
        count=len(started),
        generations=[
            schemas.BatchItemOut(row=number, id=g.id, status=g.status, url=links.generation(g.id))
            for number, g in enumerate(started, start=1)
        ],
    )


async def _withdraw(caller: CallerDep, started: list[Generation]) -> None:
    """A batch that failed half-way (the queue went away): cancel what was queued, best effort."""
    for generation in started:
        try:
            await caller.api.studio.cancel(caller.requester, generation.id)
        except Exception:
            log.warning("could not withdraw generation %s of a failed batch", generation.id, exc_info=True)
