"""Request bodies: size-capped before they are read, and parsed as JSON or as multipart uploads.

The cap is enforced on the wire: a Content-Length above it is refused at once (413), and a
body sent without one is counted as it streams in. Multipart files are spooled to disk by
Starlette, never held whole in memory, and each is size-checked before it is read.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studio.uploads import UploadRejected

JSON_LIMIT = 4 * 1024 * 1024  # JSON never carries images


def too_large(limit: int) -> str:
    return f"The request body is larger than {limit / 1_048_576:.1f} MiB, the limit for this endpoint."


class BodyLimit:
    """ASGI middleware: refuse bodies above ``limit_for(path)`` before they are read in full."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = self.limit_for(scope["path"])
        if not headers.get(b"content-type", b"").lower().startswith(b"multipart/"):
            limit = min(limit, JSON_LIMIT)  # only multipart bodies carry files
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer(send, 413 if declared.isdigit() else 400, too_large(limit))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a body streamed without (or beyond) its Content-Length
                    raise HTTPException(413, too_large(limit))
            return message

        await self.app(scope, counted, send)


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_upload(upload: UploadFile, max_bytes: int, label: str = "The image") -> bytes:
    """An uploaded file's bytes, once its spooled size proved within the limit."""
    size = upload.size
    if size is None or size > max_bytes:
        shown = "unknown" if size is None else f"{size / 1_048_576:.1f} MiB"
        raise UploadRejected(f"{label} is {shown}; the limit is {max_bytes / 1_048_576:.0f} MiB.")
    return await upload.read()


@contextlib.asynccontextmanager
async def parsed_body(
    request: Request, as_json: type[BaseModel], as_form: type[BaseModel]
) -> AsyncIterator[BaseModel]:
    """The body as ``as_json`` (application/json) or ``as_form`` (multipart/form-data).

    Uploaded files stay readable inside the block and are closed (deleted) after it.
    """
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        if kind == "application/json":
            yield _validated(as_json, await request.body(), json_body=True)
            return
        if kind != "multipart/form-data":
            raise HTTPException(
                415, "Send application/json (an Atelier image) or multipart/form-data (an upload)."
            )
        form = await request.form(max_files=4, max_fields=40)
        fields: dict[str, Any] = {}
        for name, value in form.multi_items():
            if name in fields:
                raise RequestValidationError(
                    [{"type": "duplicate", "loc": ("body", name), "msg": "Given more than once"}]
                )
            fields[name] = value
        yield _validated(as_form, fields, json_body=False)
    finally:
        await request.close()


def _validated(model: type[BaseModel], data: Any, json_body: bool) -> BaseModel:
    try:
        return model.model_validate_json(data) if json_body else model.model_validate(data)
    except ValidationError as error:
        # The input is not echoed: it may be raw bytes (not JSON-encodable) and the client has it.
        raise RequestValidationError(
            error.errors(include_url=False, include_context=False, include_input=False)
        ) from None


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def either_body(as_json: type[BaseModel], as_form: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body that is JSON or multipart (the models are added to the components)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema_ref(as_json)},
                "multipart/form-data": {"schema": schema_ref(as_form)},
            },
        }
    }
