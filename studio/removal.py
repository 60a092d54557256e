"""Taking images away: a moderator removes a result; anyone forgets their own work.

Both erase whole generations (rows, favourites, finishes, feed entries, API results) and free
the artifact files no other row still refers to (files are shared by content). Images made from
an erased one keep working; their lineage shows the parent as removed. The front end deletes
the messages it had posted, which ``Erased.posts`` lists.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from studio.artifacts import ArtifactStore
from studio.entities import Post, Project, Requester
from studio.errors import NotFound, NotYours, StudioError
from studio.store import Store
from studio.store.removal import ErasedRows

ForgetScope = Literal["project", "all"]


@dataclass(frozen=True)
class Erased:
    generations: int
    images: int
    files: int  # artifact files deleted
    posts: list[Post]  # the front ends' messages that showed them: delete them there
    still_running: int = 0  # unfinished generations left alone (forget them once they end)


@dataclass(frozen=True)
class ForgetPlan:
    """What ``forget`` will erase, counted for the person to confirm."""

    requester: Requester
    scope: ForgetScope
    project: Project | None
    generation_ids: list[str]
    images: int
    still_running: int


class Removal:
    def __init__(self, store: Store, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    async def remove(self, requester: Requester, message_id: str) -> Erased:
        """A moderator (Manage Messages where the message is) removes the result a message shows."""
        if not requester.moderator:
            raise NotYours("Only moderators (Manage Messages in that channel) can remove results.")
        post = await self.store.post(message_id)
        unknown = NotFound("That message isn't an Atelier result (or it was already removed).")
        if post is None:
            raise unknown
        generation = await self.store.get_generation(post.generation_id)
        if not requester.operator and generation.server != requester.server:
            raise unknown
        delivery = await self.store.delivery(generation.id)
        if not generation.is_final or (delivery is not None and delivery.delivered_at is None):
            raise StudioError(
                "That job is still running or being posted: cancel it or try again in a moment."
            )
        rows = ErasedRows()
        await self.store.removal.erase_generation(generation.id, rows)
        return await self._finish(rows)

    async def prepare_forget(
        self, requester: Requester, scope: ForgetScope, project: Project | None = None
    ) -> ForgetPlan:
        """Count what forgetting would erase: one of the person's projects, or everything of theirs."""
        if scope == "project":
            if project is None:
                raise StudioError("Use /forget project inside one of your project threads.")
            if project.owner_id != requester.id:
                raise NotYours("This project isn't yours: you can only forget your own work.")
        project_id = project.id if scope == "project" and project is not None else None
        ids = await self.store.removal.finished_generations(requester.id, project_id)
        running = await self.store.removal.unfinished_count(requester.id, project_id)
        images = await self.store.removal.count_images(ids)
        if not ids and scope == "project":
            raise StudioError("There is nothing of yours to forget in this project.")
        return ForgetPlan(requester, scope, project if scope == "project" else None, ids, images, running)

    async def forget(self, plan: ForgetPlan) -> Erased:
        """Erase what the plan counted (and anything finished since); unfinished work stays."""
        owner = plan.requester.id
        project_id = plan.project.id if plan.project is not None else None
        rows = ErasedRows()
        for generation_id in await self.store.removal.finished_generations(owner, project_id):
            await self.store.removal.erase_generation(generation_id, rows)
        await self.store.removal.forget_personal(owner, project_id, rows)
        running = await self.store.removal.unfinished_count(owner, project_id)
        return await self._finish(rows, running)

    async def _finish(self, rows: ErasedRows, still_running: int = 0) -> Erased:
        files = 0
        for sha in sorted(rows.digests):
            if not await self.store.removal.digest_in_use(sha):
                files += await asyncio.to_thread(self.artifacts.discard, sha)
        return Erased(rows.generations, rows.images, files, rows.posts, still_running)
