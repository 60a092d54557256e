"""Errors on web pages: a page with one polite sentence (or JSON for the pages' own scripts);
the REST API's paths keep the API's JSON answers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from api import errors as api_errors
from api.context import context as api_context
from studio.errors import NotYours, StudioError
from web.context import NeedsSignIn, login_url, web_context
from web.security import is_web_path
from web.sessions import Sessions, Viewer

log = logging.getLogger(__name__)
MESSAGES = {
    404: "That page does not exist (or it is not yours).",
    405: "That page cannot be used this way.",
    413: "That is too large.",
}


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or (
        request.method != "GET" and ("x-csrf-token" in request.headers)
    )


async def answer(
    request: Request, status: int, sentence: str, headers: dict[str, str] | None = None
) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": sentence}, status, headers=headers)
    web = web_context(request)
    response = web.pages.render(
        request, "error.html", status, message=sentence, code=status, viewer=await _viewer(request)
    )
    if headers:
        response.headers.update(headers)
    return response


async def _viewer(request: Request) -> Viewer | None:
    """Who is signed in, for the page's header; nobody when that cannot be told (the error may
    be the store's own)."""
    try:
        return await Sessions(api_context(request).studio.store, web_context(request).secure_cookies).viewer(
            request
        )
    except Exception:
        return None


async def on_http(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if not is_web_path(request.url.path):
        return await http_exception_handler(request, error)
    detail = error.detail if isinstance(error.detail, str) and error.status_code not in MESSAGES else None
    return await answer(
        request, error.status_code, detail or MESSAGES.get(error.status_code, "That did not work.")
    )


async def on_studio(request: Request, error: Exception) -> Response:
    assert isinstance(error, StudioError)
    if not is_web_path(request.url.path):
        return await api_errors.studio_error(request, error)
    status = api_errors.status_of(error)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, error)
    sentence = MESSAGES[404] if isinstance(error, NotYours) else str(error)
    return await answer(request, status, sentence)


async def on_invalid(request: Request, error: Exception) -> Response:
    if not is_web_path(request.url.path):
        return await api_errors.invalid_request(request, error)
    return await answer(
        request,
        400 if request.method == "GET" else 422,
        "That request was not understood; please check it and try again.",
    )


async def on_sign_in(request: Request, error: Exception) -> Response:
    assert isinstance(error, NeedsSignIn)
    if wants_json(request):
        return JSONResponse({"detail": "Please sign in again."}, 401)
    return RedirectResponse(login_url(error.back_to), 303)


async def on_unexpected(request: Request, error: Exception) -> Response:
    if not is_web_path(request.url.path):
        return await api_errors.unexpected(request, error)
    log.error("%s %s failed", request.method, request.url.path, exc_info=error)
    return await answer(request, 500, "Something went wrong on our side; it has been logged.")


def install(app: FastAPI) -> None:
    """After api.errors.install: these handlers pass the API's paths on to its own."""
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(StudioError, on_studio)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(NeedsSignIn, on_sign_in)
    app.add_exception_handler(Exception, on_unexpected)
