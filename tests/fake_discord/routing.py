"""The fake's REST vocabulary, shared by every resource: a parsed request, a route, JSON answers."""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web
from multidict import MultiMapping

from tests.fake_discord.rules import DiscordError

API_PREFIX = "/api/v10"

# Path fragments of the route table (named groups become ``Req.params``).
CHANNEL = r"(?P<channel_id>\d+)"
MESSAGE = r"(?P<message_id>\d+)"
APP = r"(?P<app_id>\d+)"
GUILD = r"(?P<guild_id>\d+)"
USER = r"(?P<user_id>\d+)"
TOKEN = r"(?P<token>[^/]+)"


@dataclass
class Upload:
    index: int
    filename: str
    data: bytes
    content_type: str


@dataclass
class Req:
    method: str
    path: str
    params: dict[str, str]
    query: MultiMapping[str]
    json: Any
    files: list[Upload]
    headers: MultiMapping[str]

    def int(self, key: str) -> int:
        return int(self.params[key])

    def body(self) -> dict[str, Any]:
        if self.json is None:
            return {}
        if not isinstance(self.json, dict):
            raise DiscordError(400, 50035, "Invalid Form Body", detail="body must be a JSON object")
        return self.json

    def flag(self, key: str) -> bool:
        return self.query.get(key, "").lower() in ("1", "true")

    def file_sizes(self) -> list[builtins.int]:
        return [len(f.data) for f in self.files]


Handler = Callable[[Req], Awaitable[web.StreamResponse]]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool = True
    exempt: bool = False  # not counted for the global 50 req/s limit (interaction endpoints)
    webhook: bool = False  # a wrong application id is an unknown webhook, not missing access
    # Called with an OAuth2 "Bearer" token (checked by the handler), never with the bot token:
    # a Bearer request matches only these, any other only the rest (see oauth.py).
    bearer: bool = False


def route(
    method: str,
    pattern: str,
    handler: Handler,
    *,
    auth: bool = True,
    exempt: bool = False,
    webhook: bool = False,
    bearer: bool = False,
) -> Route:
    return Route(method, re.compile(pattern), handler, auth and not bearer, exempt, webhook, bearer)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py compares the header verbatim (no charset).
    all_headers = {"Content-Type": "application/json"}
    if headers:
        all_headers.update(headers)
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


def no_content() -> web.Response:
    return web.Response(status=204)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None


async def read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """The JSON payload and the uploaded files of a request (JSON or multipart/form-data)."""
    ctype = request.headers.get("Content-Type", "")
    if ctype.startswith("application/x-www-form-urlencoded"):  # OAuth2's token URL
        return dict((await request.post()).items()), []
    if ctype.startswith("multipart/form-data"):
        payload: Any = None
        files: list[Upload] = []
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue
            data = bytes(await part.read(decode=False))
            name = part.name or ""
            if name == "payload_json":
                payload = _parse_json(data)
                continue
            match = re.fullmatch(r"files\[(\d+)\]|file(\d*)", name)
            index = len(files)
            if match:
                digits = match.group(1) or match.group(2)
                index = int(digits) if digits else index
            files.append(
                Upload(
                    index=index,
                    filename=part.filename or f"file{index}",
                    data=data,
                    content_type=part.headers.get("Content-Type", "application/octet-stream"),
                )
            )
        return payload, files
    raw = await request.read()
    if not raw:
        return None, []
    return _parse_json(raw), []


_TOKEN_IN_PATH = re.compile(r"^(/(?:interactions|webhooks)/\d+/)[^/]+")


def redact(path: str) -> str:
    """Interaction/webhook tokens are long and secret-looking: show them as ``<token>``."""
    return _TOKEN_IN_PATH.sub(r"\1<token>", path)
