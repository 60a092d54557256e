"""Mood boards: a project's reference images, shown as a sheet and used as a generation's start.

Listing a board is a read: ``store.board(project.id)``.
"""

from __future__ import annotations

import asyncio

from studio import jobs
from studio.artifacts import ArtifactStore
from studio.entities import Project, Requester
from studio.errors import BoardFull, NotFound, NotYours
from studio.queue import JobQueue
from studio.settings import Settings
from studio.store import Store
from studio.uploads import verify_image

MAX_BOARD = 16


class Boards:
    def __init__(self, settings: Settings, store: Store, queue: JobQueue, artifacts: ArtifactStore) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.artifacts = artifacts

    async def add(self, requester: Requester, project: Project, uploads: list[bytes]) -> int:
        """Add verified images to a project's board; returns how many it holds now."""
        items = await self.store.board(project.id)
        if len(items) + len(uploads) > MAX_BOARD:
            raise BoardFull(MAX_BOARD, len(items))
        for upload in uploads:  # all verified before any is stored: nothing is half-added
            await asyncio.to_thread(
                verify_image, upload, self.settings.max_upload_bytes, self.settings.max_upload_pixels
            )
        await self.store.ensure_user(requester.id, requester.name)
        for upload in uploads:
            sha = await asyncio.to_thread(self.artifacts.put, upload, ".img")
            await self.store.add_board_item(project.id, sha, requester.id)
        return len(items) + len(uploads)

    async def remove(self, requester: Requester, project: Project, number: int) -> int:
        items = await self.store.board(project.id)
        if not 1 <= number <= len(items):
            raise NotFound(f"The board has {len(items)} image(s); there is no number {number}.")
        item = items[number - 1]
        if requester.id not in (item.added_by, project.owner_id) and not requester.moderator:
            raise NotYours("Only whoever added that image, the project's owner or a moderator can remove it.")
        await self.store.remove_board_items(project.id, item.id)
        return len(items) - 1

    async def clear(self, requester: Requester, project: Project) -> None:
        if requester.id != project.owner_id and not requester.moderator:
            raise NotYours("Only the project's owner or a moderator can clear its board.")
        await self.store.remove_board_items(project.id)

    async def sheet(self, project: Project) -> bytes:
        """The board as one numbered image, composed by a post worker."""
        payload = jobs.BoardSheetJob(images=await self._images(project))
        result = await self.queue.run(
            jobs.BOARD_SHEET_SPEC, payload, timeout=self.settings.grid_timeout_s, what="The board's sheet"
        )
        return result.png

    async def collage(self, project: Project, width: int, height: int) -> bytes:
        """The board's images tiled to a size: the start of a generation from the board."""
        payload = jobs.CollageJob(images=await self._images(project), width=width, height=height)
        result = await self.queue.run(
            jobs.COLLAGE_SPEC, payload, timeout=self.settings.grid_timeout_s, what="The board's collage"
        )
        return result.png

    async def _images(self, project: Project) -> list[bytes]:
        items = await self.store.board(project.id)
        if not items:
            raise NotFound("This project's mood board is empty: add images with /moodboard add.")
        return [await self.artifacts.read(item.artifact, ".img") for item in items]
