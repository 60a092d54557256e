"""Static files under /static/<version>/<name>: cached forever, as a release changes the version."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from web.context import web_context

router = APIRouter(include_in_schema=False)


@router.get("/static/{version}/{name}")
async def static_file(version: str, name: str, request: Request) -> Response:
    pages = web_context(request).pages
    found = pages.static.get(name)
    if found is None:
        raise HTTPException(404)
    if version != pages.version:  # an older page after a release: the current file, not cached long
        return Response(found.body, media_type=found.media_type, headers={"Cache-Control": "no-cache"})
    return Response(
        found.body,
        media_type=found.media_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
