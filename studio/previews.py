"""Live previews per server: on unless the server's admins turned them off (/settings previews)."""

from __future__ import annotations

from studio.defaults import Defaults
from studio.entities import Requester
from studio.settings import Settings
from studio.store import Store


async def preview_every_s(store: Store, settings: Settings, requester: Requester) -> float:
    """How often the requester's job shows its current step: ``preview_interval_s``, or 0 (none)
    where the operator set 0 or the server turned previews off. Outside a server: on."""
    if settings.preview_interval_s <= 0:
        return 0.0
    if requester.server:
        stored = await store.defaults("server", requester.server)
        if stored and Defaults.model_validate_json(stored).previews is False:
            return 0.0
    return settings.preview_interval_s
