"""/v1/batches: one generation per row of data, from a prompt template (avatars, ads...)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from fastapi import APIRouter, Request

from api import schemas
from api.auth import CallerDep
from api.batching import parse_template, rows_from_csv
from api.generating import destination, recorded
from api.present import Links
from api.routing import StrictJsonRoute
from studio.errors import InvalidRecipe
from studio.recipe import Draft

router = APIRouter(tags=["generations"], route_class=StrictJsonRoute)
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
    where = destination(caller, body.project, body.private, body.webhook_url, body.discord_thread_id)
    # Filled as they are planned: a row's error is the first one met, in order.
    texts = (template.fill(row, number) for number, row in enumerate(rows, start=1))
    async with _locks[caller.requester.id]:
        batch = await studio.generations.prepare_batch(
            caller.requester,
            texts,
            Draft.from_options(dict(body)),
            private=where.private,
            project=where.project,
            thread_id=where.deliver_to,
            limit=settings.api_batch_max_jobs,
        )
        started = await studio.generations.start_batch(
            batch, lambda generation: recorded(caller, generation, where)
        )
    links = Links.of(request)
    return schemas.BatchOut(
        count=len(started),
        generations=[
            schemas.BatchItemOut(row=number, id=g.id, status=g.status, url=links.generation(g.id))
            for number, g in enumerate(started, start=1)
        ],
    )
