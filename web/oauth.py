"""Discord's OAuth2 authorization-code flow, scopes ``identify guilds``: the few calls it needs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from studio.errors import StudioError
from studio.store.web import WebGuild
from web.settings import WebSettings

log = logging.getLogger(__name__)
SCOPES = "identify guilds"
TIMEOUT = aiohttp.ClientTimeout(total=15)


class SignInFailed(StudioError):
    """Discord refused the sign-in, or could not be reached: the person can simply try again."""


@dataclass(frozen=True)
class DiscordUser:
    id: str
    name: str  # the display name: global name, else the username


class DiscordOAuth:
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._http: aiohttp.ClientSession | None = None

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        query = {
            "client_id": self.settings.client_id or "",
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": SCOPES,
            "state": state,
            "prompt": "none",  # skip the consent screen when already authorised
        }
        return f"{self.settings.oauth_url}?{urlencode(query)}"

    async def exchange(self, code: str, redirect_uri: str) -> str:
        """The access token for an authorization code (which works once)."""
        secret = self.settings.client_secret
        assert self.settings.client_id and secret is not None, "sign-in is configured"
        body = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        basic = aiohttp.encode_basic_auth(self.settings.client_id, secret.get_secret_value())
        answer = await self._call("POST", "/oauth2/token", data=body, headers={"Authorization": basic})
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise SignInFailed("Discord did not sign you in; please try again.")
        return token

    async def user(self, token: str) -> DiscordUser:
        found = await self._call("GET", "/users/@me", headers=_bearer(token))
        if not isinstance(found, dict) or "id" not in found:
            raise SignInFailed("Discord did not say who you are; please try again.")
        return DiscordUser(
            str(found["id"]), str(found.get("global_name") or found.get("username") or "someone")
        )

    async def guilds(self, token: str) -> list[WebGuild]:
        found = await self._call("GET", "/users/@me/guilds", headers=_bearer(token))
        if not isinstance(found, list):
            raise SignInFailed("Discord did not list your servers; please try again.")
        return [WebGuild(str(g["id"]), str(g.get("name", "")), int(g.get("permissions") or 0)) for g in found]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _call(self, method: str, path: str, **kwargs: object) -> object:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        url = self.settings.api_base.rstrip("/") + path
        try:
            async with self._http.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
                if response.status >= 400:
                    log.warning("Discord answered %s %s with %d", method, path, response.status)
                    raise SignInFailed("Discord refused the sign-in; please try again.")
                return await response.json()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("Discord %s %s failed: %s", method, path, error)
            raise SignInFailed("Discord could not be reached; please try again in a moment.") from None


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
