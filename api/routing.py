"""Strict JSON bodies: what Python's json module accepts but JSON does not is refused with a 422.

Python's parser (used by FastAPI) takes ``NaN``, ``Infinity`` and ``-Infinity``, and decodes an
escaped lone surrogate (``"\\ud800"``) into a str that cannot be encoded back to UTF-8. Neither
is JSON (RFC 8259), and both used to surface later as a 500: a NaN echoed in a validation error
cannot be serialised, a surrogate breaks the response, SQLite or a webhook. Every /v1 route checks
the body once, before FastAPI parses it.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


class NotStrictJson(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise NotStrictJson(f"{name} is not a JSON number; send a finite number")


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_strict_json(body: bytes) -> None:
    """Raise NotStrictJson for NaN/±Infinity or a lone surrogate, json.JSONDecodeError for non-JSON."""
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise NotStrictJson("the JSON is nested too deeply") from None
    # Iterative walk: a deeply nested (but parseable) document must not recurse here either.
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _has_lone_surrogate(item):
                raise NotStrictJson("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), not text")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def is_json(request: Request) -> bool:
    """As FastAPI decides: no content type, application/json or application/*+json."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    json_subtype = subtype == "json" or subtype.endswith("+json")
    return message.get_content_maintype() == "application" and json_subtype


def invalid_json(reason: str) -> RequestValidationError:
    error = {"type": "json_invalid", "loc": ("body",), "msg": f"Invalid JSON: {reason}."}
    return RequestValidationError([error])


class StrictJsonRoute(APIRoute):
    """An APIRoute whose JSON body must be strict JSON before anything else reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            if is_json(request):
                body = await request.body()  # cached on the request: FastAPI reads the same bytes
                if body:
                    try:
                        check_strict_json(body)
                    except NotStrictJson as error:
                        raise invalid_json(str(error)) from None
                    except ValueError:
                        pass  # not JSON at all (or not UTF-8): FastAPI answers that itself
            return await handler(request)

        return strict
