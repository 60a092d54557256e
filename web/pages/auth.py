"""Sign in with Discord (OAuth2 authorization code, ``identify guilds``), and sign out.

The ``state`` is random and kept, with the page to return to, in a short-lived HttpOnly cookie of
ours: a callback whose state does not match it is refused (login CSRF). The page to return to must
be a path on this site: anything else (``//evil``, ``https://…``, backslashes) is refused, never
followed (open redirect).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from studio.entities import Requester
from web.context import AnyPage
from web.oauth import SignInFailed
from web.sessions import check_csrf

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
STATE_COOKIE = "atelier_oauth"
STATE_TTL_S = 600
# A path on this site: one leading slash, printable ASCII, no backslash (browsers read "/\\" as "//").
SAFE_NEXT = re.compile(r"^/(?![/\\])[\x21-\x5b\x5d-\x7e]*$")


def safe_next(value: str | None) -> str:
    if not value:
        return "/"
    if len(value) > 512 or not SAFE_NEXT.match(value):
        raise HTTPException(400, "That sign-in link points away from this site, so it was refused.")
    return value


@router.get("/login")
async def login(current: AnyPage, next: Annotated[str | None, Query(max_length=2048)] = None) -> Response:
    back_to = safe_next(next)
    web = current.web
    if not web.discord.enabled:
        raise HTTPException(
            503,
            "Sign-in with Discord is not set up on this studio yet: its operator sets "
            "DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET.",
        )
    state = secrets.token_urlsafe(24)
    response = RedirectResponse(web.oauth.authorize_url(state, web.redirect_uri), 303)
    packed = state + "." + base64.urlsafe_b64encode(back_to.encode()).decode().rstrip("=")
    response.set_cookie(
        STATE_COOKIE,
        packed,
        max_age=STATE_TTL_S,
        httponly=True,
        secure=web.secure_cookies,
        samesite="lax",
        path="/auth",
    )
    return response


def _unpack(cookie: str | None) -> tuple[str, str] | None:
    if not cookie or "." not in cookie:
        return None
    state, encoded = cookie.split(".", 1)
    try:
        back_to = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return state, back_to


@router.get("/auth/callback")
async def callback(
    request: Request,
    current: AnyPage,
    code: Annotated[str | None, Query(max_length=512)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    kept = _unpack(request.cookies.get(STATE_COOKIE))
    if kept is None or not state or not hmac.compare_digest(kept[0].encode(), state.encode()):
        raise HTTPException(
            400, "This sign-in did not start here, or it took too long; please sign in again."
        )
    back_to = safe_next(kept[1])
    if error is not None or not code:
        raise HTTPException(400, "Sign-in was cancelled on Discord; nothing was changed.")
    web = current.web
    try:
        token = await web.oauth.exchange(code, web.redirect_uri)
        user = await web.oauth.user(token)
        guilds = await web.oauth.guilds(token)
    except SignInFailed as failed:
        raise HTTPException(502, str(failed)) from None
    user_id = f"discord:{user.id}"
    await current.studio.store.ensure_user(user_id, user.name)
    response = RedirectResponse(back_to, 303)
    response.delete_cookie(
        STATE_COOKIE, path="/auth", httponly=True, secure=web.secure_cookies, samesite="lax"
    )
    await current.sessions.start(response, user_id, user.name, guilds)
    log.info("web sign-in of %s", Requester(user_id, user.name).id)
    return response


@router.post("/logout")
async def logout(current: AnyPage, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    response = RedirectResponse("/", 303)
    if current.viewer is not None:
        check_csrf(current.viewer, csrf_token)
        await current.sessions.end(current.request, response)
    return response
