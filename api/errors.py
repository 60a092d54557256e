"""StudioErrors as HTTP answers: the user-facing sentence as ``detail``, the status by kind.

Another person's work answers 404 exactly like work that does not exist: existence is never
revealed. Anything unexpected is logged with its traceback and answers a plain 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.schemas import ErrorOut
from studio.errors import (
    AlreadyFinished,
    BoardFull,
    CatalogueError,
    DatasetRejected,
    GenerationCancelled,
    GenerationFailed,
    InvalidRecipe,
    NameTaken,
    NotFound,
    NotYours,
    QueueUnavailable,
    QuotaExceeded,
    StoreUnavailable,
    StudioError,
    TooManyJobs,
    UnknownLora,
    UnknownModel,
    WorkerUnavailable,
)
from studio.quotas import DailyQuotaReached
from studio.uploads import UploadRejected

log = logging.getLogger(__name__)
NOT_FOUND = "Not found (or not yours)."
CAPACITY_RETRY_S = 15  # a job of the person's own has usually ended by then

# First match wins: subclasses before their bases.
STATUSES: tuple[tuple[type[StudioError], int], ...] = (
    (NotYours, 404),
    (NotFound, 404),
    (TooManyJobs, 429),
    (QuotaExceeded, 429),
    (QueueUnavailable, 503),
    (StoreUnavailable, 503),
    (WorkerUnavailable, 503),
    (CatalogueError, 500),
    (NameTaken, 409),
    (AlreadyFinished, 409),
    (GenerationFailed, 409),
    (GenerationCancelled, 409),
    (InvalidRecipe, 422),
    (UnknownModel, 422),
    (UnknownLora, 422),
    (DatasetRejected, 422),
    (UploadRejected, 422),
    (BoardFull, 422),
)


def status_of(error: StudioError) -> int:
    for kind, status in STATUSES:
        if isinstance(error, kind):
            return status
    return 400


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# Documented on every /v1 operation.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _doc("No API key, or a wrong or revoked one"),
    404: _doc("It does not exist, or it is not yours"),
    413: _doc("The request body is too large"),
    422: _doc("The request was refused: `detail` says why"),
    429: _doc("Too many requests (see Retry-After), or too many jobs in flight"),
    503: _doc("The queue or the workers are unavailable; nothing was started"),
}


async def studio_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StudioError)
    status = status_of(error)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, error)
    detail = NOT_FOUND if isinstance(error, NotYours) else str(error)
    body = ErrorOut(detail=detail, field=getattr(error, "field", None))
    retry = isinstance(error, (TooManyJobs, StoreUnavailable))
    headers = {"Retry-After": str(CAPACITY_RETRY_S)} if retry else None
    if isinstance(error, DailyQuotaReached):  # retry once the person's quota resets
        headers = {"Retry-After": str(error.retry_after_s)}
    return JSONResponse(body.model_dump(exclude_none=True), status, headers=headers)


def _text(value: str) -> str:
    """The string as valid UTF-8: a lone surrogate becomes "?" instead of breaking the answer."""
    return value.encode("utf-8", "replace").decode("utf-8")


def _plain(error: Any) -> dict[str, Any]:
    """A validation error without the input: it may be bytes, a NaN or a surrogate (and the client has it)."""
    loc = [part if isinstance(part, int) else _text(str(part)) for part in error.get("loc", ())]
    msg = str(error.get("msg", ""))
    ctx = error.get("ctx")
    if error.get("type") == "json_invalid" and isinstance(ctx, dict) and isinstance(ctx.get("error"), str):
        msg = f"{msg}: {ctx['error']}"  # FastAPI keeps the parser's reason apart; say it
    return {"type": str(error.get("type", "invalid")), "loc": loc, "msg": _text(msg)}


async def invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": [_plain(item) for item in error.errors()]}, 422)


async def unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=error)
    return JSONResponse({"detail": "Something went wrong on our side; it has been logged."}, 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(StudioError, studio_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, unexpected)
