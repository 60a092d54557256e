"""Who is signed in: a random token in an HttpOnly cookie, its sha256 in the store, and the
person's servers (those they share with the bot). Plus the CSRF token every write must carry."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response

from studio.entities import Requester
from studio.store import Store
from studio.store.web import WebGuild, WebSession

COOKIE = "atelier_session"
# A day: the person's servers are read from Discord at sign-in, so someone who leaves (or is
# removed from) a server stops seeing it here within a day; signing in again is one redirect.
SESSION_TTL_S = 86400.0
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MANAGE_MESSAGES = 1 << 13
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Viewer:
    """A signed-in person and the servers they may look into (theirs and the bot's)."""

    session: WebSession
    servers: tuple[WebGuild, ...]

    @property
    def user_id(self) -> str:
        return self.session.user_id

    @property
    def name(self) -> str:
        return self.session.user_name

    @property
    def csrf(self) -> str:
        return self.session.csrf_token

    def server(self, server_id: str) -> WebGuild:
        """One of the person's servers; any other is answered as if it did not exist."""
        for guild in self.servers:
            if guild.id == server_id:
                return guild
        raise HTTPException(404, "That page does not exist.")

    def requester(self, server_id: str) -> Requester:
        """The person as the studio's use cases see them, in one of their servers."""
        guild = self.server(server_id)
        admin = bool(guild.permissions & (ADMINISTRATOR | MANAGE_GUILD))
        return Requester(
            id=self.user_id,
            name=self.name,
            moderator=admin or bool(guild.permissions & MANAGE_MESSAGES),
            admin=admin,
            server=guild.id,
        )


class Sessions:
    def __init__(self, store: Store, secure_cookies: bool) -> None:
        self.store = store
        self.secure = secure_cookies

    async def start(self, response: Response, user_id: str, name: str, guilds: list[WebGuild]) -> None:
        token = secrets.token_urlsafe(32)
        await self.store.web.add_session(
            token_hash(token), user_id, name, guilds, secrets.token_urlsafe(32), SESSION_TTL_S
        )
        await self.store.web.purge_sessions()
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(SESSION_TTL_S),
            httponly=True,
            secure=self.secure,
            samesite="lax",
            path="/",
        )

    async def end(self, request: Request, response: Response) -> None:
        token = request.cookies.get(COOKIE)
        if token:
            await self.store.web.end_session(token_hash(token))
        response.delete_cookie(COOKIE, path="/", httponly=True, secure=self.secure, samesite="lax")

    async def viewer(self, request: Request) -> Viewer | None:
        """The signed-in person, or None (no cookie, or a forged, ended or expired one)."""
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 128:
            return None
        session = await self.store.web.session(token_hash(token))
        if session is None:
            return None
        shared = await self.store.web.bot_guild_ids()
        return Viewer(session, tuple(g for g in session.guilds if g.id in shared))


def check_csrf(viewer: Viewer, sent: str | None) -> None:
    """A write must carry the session's CSRF token (a form field or the X-CSRF-Token header)."""
    if not sent or not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
        raise HTTPException(
            403, "This form has expired or did not come from Atelier; reload the page and try again."
        )
