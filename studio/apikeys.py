"""REST API keys: minted and revoked by their owners (/apikey), checked on every API request.

A token is ``atl_`` + 43 URL-safe characters (256 random bits). Only its sha256 is stored: a
token this strong needs no salt or slow hash, and a stolen database holds no usable token. A key
acts as its owner in the server it was minted in, and as nobody else.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field

from studio.entities import ApiKey, Requester
from studio.errors import InvalidRecipe, NotFound, QuotaExceeded
from studio.notices import DeliveryNotice, DeliveryNotices
from studio.settings import Settings
from studio.store import Store
from studio.store.repository import new_id

TOKEN_PREFIX = "atl_"  # noqa: S105 (a prefix, not a secret)
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105
_TOKEN = re.compile(r"^atl_[A-Za-z0-9_-]{43}$")
MAX_NAME = 40
SHOWN_PREFIX = 8  # "atl_" and four characters: enough to tell keys apart, useless to an attacker
TOUCH_EVERY_S = 60.0  # last_used_at is a hint: no write on every request


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class MintedKey:
    """A new key with its secrets, shown to its owner once and never again."""

    key: ApiKey
    token: str = field(repr=False)
    webhook_secret: str = field(repr=False)


class ApiKeys:
    def __init__(self, settings: Settings, store: Store, notices: DeliveryNotices | None = None) -> None:
        self.settings = settings
        self.store = store
        self.notices = notices  # None where nothing is promised to Discord (the CLI's key commands)

    async def mint(self, requester: Requester, name: str | None = None) -> MintedKey:
        live = await self.store.keys.live_of(requester.id)
        if len(live) >= self.settings.api_max_keys_per_user:
            raise QuotaExceeded(
                f"You already have {len(live)} API keys; the limit is {self.settings.api_max_keys_per_user}. "
                "Revoke one you no longer use first."
            )
        label = _checked_name(name) if name else f"key {len(live) + 1}"
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        secret = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)
        await self.store.ensure_user(requester.id, requester.name)
        key = await self.store.keys.add(
            new_id()[:12],
            owner_id=requester.id,
            owner_name=requester.name,
            server=requester.server,
            name=label,
            token_hash=hash_token(token),
            prefix=token[:SHOWN_PREFIX],
            webhook_secret=secret,
        )
        return MintedKey(key, token, secret)

    async def every_key(self, requester: Requester) -> list[ApiKey]:
        """Every live key, for whoever runs the studio (`atelier apikey list`)."""
        if not requester.operator:
            raise NotFound("Only the studio's operator sees everyone's API keys.")
        return await self.store.keys.live()

    async def revoke(self, requester: Requester, key_id: str) -> ApiKey:
        """Revoke one of the requester's live keys (the operator: anyone's); anyone else's does
        not exist for them."""
        key = await self.store.keys.get(key_id.strip())
        if (
            key is None
            or (key.owner_id != requester.id and not requester.operator)
            or not await self.store.keys.revoke(key.owner_id, key.id)
        ):
            raise NotFound(
                f"You have no live API key with id `{key_id.strip()[:20]}`; /apikey list shows them."
            )
        return key

    async def authenticate(self, token: str) -> ApiKey | None:
        """The live key a bearer token belongs to, or None (malformed, unknown or revoked)."""
        if not _TOKEN.match(token):
            return None
        key = await self.store.keys.by_hash(hash_token(token))
        if key is None or key.revoked_at is not None:
            return None
        now = time.time()
        if key.last_used_at is None or now - key.last_used_at > TOUCH_EVERY_S:
            await self.store.keys.touch(key.id, now)
        return key

    # Generations started through the API

    async def record_generation(
        self, key: ApiKey, generation_id: str, webhook_url: str | None, thread_id: str | None = None
    ) -> None:
        """Remember the API started it; with a Discord thread to show it in (its delivery already
        promised by the submit), tell the bot at once."""
        await self.store.keys.add_generation(generation_id, key.id, webhook_url)
        if thread_id is not None and self.notices is not None:
            await self.notices.announce(DeliveryNotice(generation_id, thread_id))

    async def webhook_secret(self, key_id: str) -> str | None:
        """The secret that signs a key's webhooks; None once the key is revoked."""
        key = await self.store.keys.get(key_id)
        return key.webhook_secret if key is not None and key.revoked_at is None else None

    async def webhook_attempted(self, generation_id: str, error: str | None, final: bool = False) -> None:
        """One more attempt at a webhook: delivered (no error), failed for good, or still pending."""
        status = "delivered" if error is None else "failed" if final else "pending"
        await self.store.keys.webhook_attempted(generation_id, status, error)


def _checked_name(name: str) -> str:
    label = " ".join(name.split())
    if not 1 <= len(label) <= MAX_NAME or not label.isprintable():
        raise InvalidRecipe("name", f"A key's name is 1 to {MAX_NAME} printable characters.")
    return label
