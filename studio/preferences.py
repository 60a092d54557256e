"""Defaults for new generations (/settings): a person's own, and their server's (admins only)."""

from __future__ import annotations

from studio.catalogue import Catalogue
from studio.defaults import Defaults, validated
from studio.entities import Requester
from studio.errors import NotYours
from studio.fairness import DEFAULT_LANE, Lane
from studio.store import Store
from studio.styles import StyleBook


class Preferences:
    def __init__(self, catalogue: Catalogue, styles: StyleBook, store: Store) -> None:
        self.catalogue = catalogue
        self.styles = styles
        self.store = store

    async def defaults_for(self, requester: Requester) -> Defaults:
        """The server's defaults overlaid with the person's own."""
        server = await self._defaults("server", requester.server) if requester.server else Defaults()
        return server.merged(await self._defaults("user", requester.id))

    async def lane_for(self, requester: Requester) -> Lane:
        """The lane the person's jobs queue in: their own setting, else their server's, else fast."""
        return (await self.defaults_for(requester)).lane or DEFAULT_LANE

    async def stored(self, requester: Requester, server: bool = False) -> Defaults:
        """What is set at one level: the person's own, or (``server``) their server's."""
        if server:
            return await self._defaults("server", requester.server) if requester.server else Defaults()
        return await self._defaults("user", requester.id)

    async def change(self, requester: Requester, changes: Defaults, server: bool = False) -> Defaults:
        """Merge ``changes`` into the person's (or, for admins, the server's) defaults."""
        scope, owner = self._scope(requester, server)
        current = await self._defaults(scope, owner)
        updated = validated(current.merged(changes), self.catalogue, self.styles)
        await self.store.ensure_user(requester.id, requester.name)
        await self.store.set_defaults(scope, owner, updated.model_dump_json(exclude_none=True))
        return updated

    async def reset(self, requester: Requester, server: bool = False) -> None:
        await self.store.set_defaults(*self._scope(requester, server), None)

    async def _defaults(self, scope: str, owner: str) -> Defaults:
        stored = await self.store.defaults(scope, owner)
        return Defaults.model_validate_json(stored) if stored else Defaults()

    @staticmethod
    def _scope(requester: Requester, server: bool) -> tuple[str, str]:
        """Where a change of defaults goes; the server's own only for its admins."""
        if not server:
            return "user", requester.id
        if not (requester.admin and requester.server):
            raise NotYours("Only server admins (Manage Server) can change the server's defaults.")
        return "server", requester.server
