"""Bearer tokens (/apikey create in Discord), then the key's rate limit, on every /v1 request."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import ApiContext, context
from studio.entities import ApiKey, Requester

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="atl_…",
    description="An API key made with `/apikey create` in Discord: `Authorization: Bearer atl_…`",
)


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    requester: Requester  # the key's owner, in the server the key was minted in
    api: ApiContext


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="atelier"'})


async def authenticated(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    api = context(request)
    if credentials is None:
        raise unauthorized("Send an API key as `Authorization: Bearer atl_…` (/apikey create in Discord).")
    key = await api.studio.keys.authenticate(credentials.credentials)
    if key is None:
        raise unauthorized("That API key is not valid (mistyped, or revoked).")
    wait = api.limiter.take(key.id)
    if wait > 0:
        raise HTTPException(
            429,
            f"Too many requests with this key; try again in {math.ceil(wait)} s.",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    return Caller(key, key.requester, api)


CallerDep = Annotated[Caller, Depends(authenticated)]
