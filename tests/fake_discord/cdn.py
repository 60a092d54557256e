"""Attachments and the CDN: uploads become attachments served at signed URLs that expire.

A URL carries ``ex`` (its expiry, hex seconds) and ``hm`` (an HMAC of the channel, attachment
and expiry), as Discord's do: a bot that stores the URL instead of the bytes finds it dead.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import mimetypes
import secrets
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.fake_discord.routing import Upload
from tests.fake_discord.state import AttachmentRecord, RequestLog
from tests.fake_discord.world import World


class Cdn:
    def __init__(self, world: World) -> None:
        self.world = world
        self._secret = secrets.token_bytes(16)
        self._files: dict[tuple[int, int], AttachmentRecord] = {}

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/cdn/attachments/{channel}/{attachment}/{filename}", self._get)
        app.router.add_get("/media/attachments/{channel}/{attachment}/{filename}", self._get)

    def _signature(self, channel_id: int, attachment_id: int, expires: int) -> str:
        key = f"{channel_id}/{attachment_id}:{expires:x}".encode()
        return hmac.new(self._secret, key, hashlib.sha256).hexdigest()

    def url(self, att: AttachmentRecord, channel_id: int, prefix: str = "cdn") -> str:
        ex = int(self.world.wall() + self.world.cdn_url_ttl)
        issued = int(self.world.wall())
        path = f"/{prefix}/attachments/{channel_id}/{att.id}/{quote(att.filename)}"
        sig = self._signature(channel_id, att.id, ex)
        return f"{self.world.base_url}{path}?ex={ex:x}&is={issued:x}&hm={sig}&"

    def attachment_payload(self, att: AttachmentRecord, channel_id: int) -> dict[str, Any]:
        return {
            "id": str(att.id),
            "filename": att.filename,
            "size": att.size,
            "url": self.url(att, channel_id),
            "proxy_url": self.url(att, channel_id, "media"),
            "content_type": att.content_type,
            "description": att.description,
            "flags": 0,
        }

    def new_attachment(
        self, data: bytes, filename: str, content_type: str, description: str | None
    ) -> AttachmentRecord:
        """An attachment not yet stored (``store`` gives it its URL)."""
        return AttachmentRecord(
            id=self.world.ids.next(),
            filename=filename,
            size=len(data),
            bytes=data,
            content_type=content_type,
            url="",
            description=description,
        )

    def from_uploads(self, payload: dict[str, Any], files: list[Upload]) -> list[AttachmentRecord]:
        """The attachments of a message's uploaded files, named and described by its payload."""
        described: dict[int, dict[str, Any]] = {}
        for entry in payload.get("attachments") or []:
            with contextlib.suppress(TypeError, ValueError):
                described[int(entry.get("id"))] = entry
        out: list[AttachmentRecord] = []
        for upload in files:
            info = described.get(upload.index, {})
            filename = info.get("filename") or upload.filename
            content_type = upload.content_type
            if content_type in ("application/octet-stream", ""):
                content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            out.append(self.new_attachment(upload.data, filename, content_type, info.get("description")))
        return out

    def store(self, channel_id: int, atts: list[AttachmentRecord]) -> None:
        for att in atts:
            att.url = self.url(att, channel_id)
            self._files[(channel_id, att.id)] = att

    async def _get(self, request: web.Request) -> web.StreamResponse:
        try:
            channel_id = int(request.match_info["channel"])
            att_id = int(request.match_info["attachment"])
            ex = int(request.query.get("ex", "0"), 16)
        except ValueError:
            return web.Response(status=404, text="Not found")
        att = self._files.get((channel_id, att_id))
        sig = self._signature(channel_id, att_id, ex)
        path = request.rel_url.raw_path
        if att is None or not hmac.compare_digest(sig, request.query.get("hm", "")):
            return self._gone(path, "with an unknown attachment or a bad signature")
        if self.world.wall() > ex:
            return self._gone(path, "after its signed URL expired (store the bytes, not the URL)")
        self.world.requests.append(RequestLog(time.monotonic(), "GET", path, 200))
        return web.Response(body=att.bytes, headers={"Content-Type": att.content_type})

    def _gone(self, path: str, why: str) -> web.Response:
        self.world.record_violation(f"CDN: GET {path} {why}")
        self.world.requests.append(RequestLog(time.monotonic(), "GET", path, 404))
        return web.Response(status=404, text="This content is no longer available.")
