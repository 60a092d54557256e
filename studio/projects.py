"""Projects: a person's named workspaces (in Discord, one thread each)."""

from __future__ import annotations

from studio.entities import Project, Requester
from studio.store import Store


class Projects:
    """Opening projects. Finding one is a read: ``store.project_by_thread`` / ``project_by_name``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def open(self, requester: Requester, name: str, thread_id: str | None = None) -> Project:
        """A new project of the requester's, in their server (its thread's, when it has one)."""
        await self.store.ensure_user(requester.id, requester.name)
        return await self.store.create_project(requester.id, name, thread_id, requester.server)

    async def named(self, requester: Requester, name: str) -> Project:
        """The requester's project of that name, made on first use."""
        await self.store.ensure_user(requester.id, requester.name)
        found = await self.store.project_by_name(requester.id, name)
        return found or await self.store.create_project(requester.id, name, server=requester.server)
