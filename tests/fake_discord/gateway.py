"""The gateway websocket: HELLO, heartbeats, IDENTIFY/READY/GUILD_CREATE, RESUME, dispatches.

Frames are plain JSON text (discord.py asks for zlib-stream but also reads text frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from tests.fake_discord.state import (
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGE_POLLS,
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    PRIVILEGED_INTENTS,
)

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41250

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE = 3
OP_VOICE_STATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

EVENT_INTENTS: dict[str, int] = {
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
    "MESSAGE_REACTION_ADD": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_POLL_VOTE_ADD": INTENT_GUILD_MESSAGE_POLLS,
    "MESSAGE_POLL_VOTE_REMOVE": INTENT_GUILD_MESSAGE_POLLS,
    "THREAD_CREATE": INTENT_GUILDS,
    "THREAD_UPDATE": INTENT_GUILDS,
    "THREAD_DELETE": INTENT_GUILDS,
    # Other users joining or leaving a thread: only with the privileged members intent.
    "THREAD_MEMBERS_UPDATE": INTENT_GUILD_MEMBERS,
    "GUILD_ROLE_UPDATE": INTENT_GUILDS,
}


class GatewayHost(Protocol):
    """What the gateway needs from the server: the bot's credentials and where to report."""

    token: str
    allowed_intents: int

    def record_violation(self, text: str) -> None: ...

    def note(self, text: str) -> None: ...


class GatewayPayloads(Protocol):
    """The world as the gateway shows it on IDENTIFY and on a member request."""

    def ready_payload(self, session_id: str) -> dict[str, Any]: ...

    def guild_create_payloads(self) -> list[dict[str, Any]]: ...

    def members_chunk_payload(self, request: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(eq=False)
class GatewaySession:
    """One gateway session (survives a socket drop until RESUMEd or replaced)."""

    id: str
    intents: int
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    identified_at: float = field(default_factory=time.monotonic)
    heartbeats: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    resumes: int = 0
    ready: bool = False  # READY and GUILD_CREATE were sent

    @property
    def live(self) -> bool:
        return self.ready and self.ws is not None and not self.ws.closed

    def wants(self, event: str) -> bool:
        needed = EVENT_INTENTS.get(event, 0)
        return needed == 0 or bool(self.intents & needed)

    async def send(self, payload: dict[str, Any]) -> None:
        ws = self.ws
        if ws is None or ws.closed:
            return
        async with self.lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        async with self.lock:
            self.seq += 1
            payload = {"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data}
            self.buffer.append(payload)
            ws = self.ws
            if ws is None or ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps(payload))


class Gateway:
    """Accepts gateway websockets and fans dispatches out to the live sessions."""

    def __init__(self, host: GatewayHost, payloads: GatewayPayloads) -> None:
        self.host = host
        self.payloads = payloads
        self.sessions: dict[str, GatewaySession] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.identify_count = 0
        self.resume_count = 0
        self.changed = asyncio.Event()
        self.on_identify: list[Callable[[GatewaySession], None]] = []

    @property
    def live_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.live]

    async def dispatch(
        self,
        event: str,
        data: dict[str, Any] | Callable[[GatewaySession], dict[str, Any]],
        *,
        session: GatewaySession | None = None,
    ) -> int:
        """Send an event to every live session (or one); returns how many got it.

        ``data`` may be a function of the session (e.g. to blank content without the intent).
        """
        targets = [session] if session is not None else self.live_sessions
        sent = 0
        for s in targets:
            if not s.wants(event):
                self.host.note(f"{event} not sent to session {s.id}: its intents ({s.intents}) exclude it")
                continue
            await s.dispatch(event, data(s) if callable(data) else data)
            sent += 1
        return sent

    async def close_all(self, code: int = 1001, message: bytes = b"fake discord going away") -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=message)

    async def reconnect_all(self) -> None:
        """Send op 7 RECONNECT to every live session (the client should resume)."""
        for s in self.live_sessions:
            await s.send({"op": OP_RECONNECT, "d": None})

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        self.sockets.add(ws)
        session: GatewaySession | None = None
        try:
            await ws.send_str(
                json.dumps({"op": OP_HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            )
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    if msg.type is WSMsgType.BINARY:
                        self.host.note("gateway: binary frame from client ignored")
                    continue
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                op = payload.get("op")
                data = payload.get("d")
                if op == OP_HEARTBEAT:
                    if session is not None:
                        session.heartbeats += 1
                    await self._send(ws, session, {"op": OP_HEARTBEAT_ACK})
                elif op == OP_IDENTIFY:
                    if session is not None:
                        await ws.close(code=4005, message=b"Already authenticated.")
                        break
                    session = await self._identify(ws, data or {})
                    if session is None:
                        break
                elif op == OP_RESUME:
                    session = await self._resume(ws, data or {})
                elif op == OP_REQUEST_MEMBERS:
                    if session is None:
                        await ws.close(code=4003, message=b"Not authenticated.")
                        break
                    await session.dispatch(
                        "GUILD_MEMBERS_CHUNK", self.payloads.members_chunk_payload(data or {})
                    )
                elif op in (OP_PRESENCE, OP_VOICE_STATE):
                    pass
                else:
                    await ws.close(code=4001, message=b"Unknown opcode.")
                    break
        finally:
            self.sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
            self.changed.set()
        return ws

    async def _send(
        self, ws: web.WebSocketResponse, session: GatewaySession | None, payload: dict[str, Any]
    ) -> None:
        if session is not None and session.ws is ws:
            await session.send(payload)
        else:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps(payload))

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> GatewaySession | None:
        if data.get("token") != self.host.token:
            self.host.record_violation("gateway: IDENTIFY with a wrong token (closed 4004)")
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(data.get("intents") or 0)
        missing = intents & PRIVILEGED_INTENTS & ~self.host.allowed_intents
        if missing:
            self.host.record_violation(
                f"gateway: IDENTIFY asked for privileged intents {missing} not enabled (4014)"
            )
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        session = GatewaySession(id=secrets.token_hex(16), intents=intents, ws=ws)
        self.sessions[session.id] = session
        self.identify_count += 1
        await session.dispatch("READY", self.payloads.ready_payload(session.id))
        for guild in self.payloads.guild_create_payloads():
            await session.dispatch("GUILD_CREATE", guild)
        session.ready = True
        for callback in self.on_identify:
            callback(session)
        self.changed.set()
        return session

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> GatewaySession | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.host.token:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps({"op": OP_INVALID_SESSION, "d": False}))
            return None
        old = session.ws
        session.ws = ws
        if old is not None and old is not ws and not old.closed:
            with contextlib.suppress(Exception):
                await old.close(code=4009, message=b"Session replaced.")
        since = int(data.get("seq") or 0)
        async with session.lock:
            for payload in list(session.buffer):
                if payload["s"] > since:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await ws.send_str(json.dumps(payload))
        await session.dispatch("RESUMED", {})
        session.resumes += 1
        self.resume_count += 1
        self.changed.set()
        return session
