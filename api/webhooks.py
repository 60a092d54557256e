"""Webhooks: a signed POST when an API generation ends, guarded against server-side request forgery.

A webhook URL is somebody else's input that makes this server send a request, so:
- https only (http only to loopback, and only with ``api_webhook_allow_loopback``, for tests);
- no credentials in the URL; hosts are DNS names with a real top-level domain, or public IPs;
  numeric tricks (``2130706433``, ``0x7f.1``), ``localhost``, ``*.internal``, ``*.local`` are refused;
- at send time every address the name resolves to must be public (not private, loopback,
  link-local such as the cloud metadata address 169.254.169.254, shared, reserved or multicast),
  and the connection goes to those checked addresses (the resolver is ours), so a name that
  changes its answer between the check and the connection (DNS rebinding) gains nothing;
- no redirects are followed, the response body is never read, and every attempt has a timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from studio.apikeys import ApiKeys
from studio.entities import ApiGeneration
from studio.errors import InvalidRecipe
from studio.settings import Settings

log = logging.getLogger(__name__)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SIGNATURE_HEADER = "X-Atelier-Signature"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
RETRY_STATUSES = frozenset({408, 425, 429})


class AddressRefused(OSError):
    """A webhook host resolved to an address this server must not call."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def address_allowed(address: IPAddress, allow_loopback: bool = False) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if allow_loopback and address.is_loopback:
        return True
    return address.is_global and not address.is_multicast


def check_url(url: str, allow_loopback: bool = False) -> str:
    """The URL if a webhook may be sent there, else InvalidRecipe (a 422) saying why."""

    def refuse(why: str) -> InvalidRecipe:
        return InvalidRecipe("webhook_url", f"The webhook URL was refused: {why}")

    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise refuse("it is not a valid URL.") from None
    if not host:
        raise refuse("it has no host.")
    if parts.username is not None or parts.password is not None:
        raise refuse("credentials do not belong in the URL.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise refuse("it contains spaces or control characters.")
    literal = _ip(host)
    loopback = host in _LOOPBACK_NAMES or (literal is not None and literal.is_loopback)
    scheme = parts.scheme.lower()
    if not (scheme == "https" or (scheme == "http" and allow_loopback and loopback)):
        raise refuse("it must start with https://.")
    if loopback:
        if not allow_loopback:
            raise refuse("it points at this machine.")
    elif literal is not None:
        if not address_allowed(literal):
            raise refuse("it points at a private, local or reserved address.")
    else:
        _check_name(host, refuse)
    return parts._replace(fragment="").geturl()


def _check_name(host: str, refuse: Callable[[str], InvalidRecipe]) -> None:
    name = host.removesuffix(".")
    labels = name.split(".")
    if name.endswith(_INTERNAL_SUFFIXES) or len(labels) < 2 or len(name) > 253:
        raise refuse("it must be a public host name such as hooks.example.com.")
    if not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        raise refuse("it must be a public host name such as hooks.example.com.")


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Resolves with the system, then refuses the lot if any address is not a public one."""

    def __init__(self, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            address = _ip(entry["host"])
            if address is None or not address_allowed(address, self.allow_loopback):
                raise AddressRefused(f"{host} resolves to a private or reserved address")
        return found

    async def close(self) -> None:
        await self._inner.close()


def _refused(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, AddressRefused) or isinstance(getattr(seen, "os_error", None), AddressRefused):
            return True
        seen = seen.__cause__
    return False


class WebhookSender:
    """POSTs signed JSON bodies, with retries and backoff; outcomes are recorded per generation."""

    def __init__(self, settings: Settings, keys: ApiKeys) -> None:
        self.settings = settings
        self.keys = keys
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.settings.api_webhook_allow_loopback), limit=32
            )
            timeout = aiohttp.ClientTimeout(total=self.settings.api_webhook_timeout_s)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, record: ApiGeneration, body: bytes) -> bool:
        """Send one generation's webhook until it is accepted, refused or out of attempts."""
        if record.webhook_url is None:
            return False
        attempts = self.settings.api_webhook_attempts
        for attempt in range(record.webhook_attempts, attempts):
            secret = await self.keys.webhook_secret(record.key_id)
            if secret is None:  # the key was revoked meanwhile: its webhooks go with it
                return False
            error, retry = await self._send(record.webhook_url, record.generation_id, body, secret)
            final = error is None or not retry or attempt + 1 >= attempts
            await self.keys.webhook_attempted(record.generation_id, error, final)
            if error is None:
                return True
            log.warning("webhook of generation %s: %s", record.generation_id, error)
            if final:
                return False
            await asyncio.sleep(self.settings.api_webhook_backoff_s * 2**attempt)
        return False

    async def _send(self, url: str, generation_id: str, body: bytes, secret: str) -> tuple[str | None, bool]:
        """(error or None, whether to try again)."""
        try:
            url = check_url(url, self.settings.api_webhook_allow_loopback)
        except InvalidRecipe as refused:
            return str(refused), False
        headers: dict[str, Any] = {
            "Content-Type": "application/json",
            "User-Agent": "Atelier-Webhook/1",
            "X-Atelier-Event": "generation.finished",
            "X-Atelier-Delivery": generation_id,
            SIGNATURE_HEADER: sign(secret, body),
        }
        try:
            async with self._client().post(url, data=body, headers=headers, allow_redirects=False) as answer:
                status = answer.status
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            if _refused(error):
                return "the host resolves to a private, local or reserved address", False
            return f"could not connect ({type(error).__name__})", True
        if 200 <= status < 300:
            return None, False
        return f"the receiver answered HTTP {status}", status >= 500 or status in RETRY_STATUSES
