"""Pages from Jinja2 templates (autoescaped), and the static files under a content-versioned URL."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str


def load_static() -> tuple[str, dict[str, StaticFile]]:
    """Every static file in memory, and one version for all: a hash of their bytes. A release
    changes the URLs, so browsers may keep each URL forever (``immutable``)."""
    files: dict[str, StaticFile] = {}
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            body = path.read_bytes()
            digest.update(path.name.encode() + b"\0" + body)
            media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media.startswith("text/") or media.endswith("javascript"):
                media += "; charset=utf-8"
            files[path.name] = StaticFile(body, media)
    return digest.hexdigest()[:12], files


class Pages:
    def __init__(self) -> None:
        self.version, self.static = load_static()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every value is escaped unless a template says otherwise
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["static"] = self.static_url

    def static_url(self, name: str) -> str:
        if name not in self.static:
            raise KeyError(f"no static file {name!r}")
        return f"/static/{self.version}/{name}"

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("viewer", None)
        context.setdefault("server", None)
        context.setdefault("nav", None)
        html = self.env.get_template(template).render(request=request, **context)
        return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})
