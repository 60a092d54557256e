"""Headers every web page carries: a Content-Security-Policy without 'unsafe-inline' (scripts and
styles come from our own files only), no framing, no sniffing, no referrer leaving the site."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",  # the mask editor paints on blobs
        "connect-src 'self'",  # fetch and Server-Sent Events to this site only
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def is_web_path(path: str) -> bool:
    """The web studio's paths: everything but the REST API and the operators' endpoints."""
    return not (
        path.startswith("/v1/") or path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")
    )


class SecurityHeaders:
    """Plain ASGI (no buffering), so the Server-Sent Events of the job view stream through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.raw = [(name.lower().encode(), value.encode()) for name, value in HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_web_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self.raw if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
