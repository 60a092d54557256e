"""The store (SQLite or PostgreSQL). Every write that must happen once is idempotent."""

from __future__ import annotations

import time

from studio.entities import Delivery, Generation, ImageRecord, Post, Project, Status
from studio.errors import NotFound
from studio.recipe import Recipe
from studio.store.community import CommunityQueries
from studio.store.connection import new_id
from studio.store.finishes import FinishRows
from studio.store.interactions import InteractionRows
from studio.store.keys import KeyRows
from studio.store.library import LibraryRows
from studio.store.loras import LoraRows
from studio.store.policy import PolicyRows
from studio.store.quotas import QuotaRows
from studio.store.removal import RemovalRows
from studio.store.rows import to_delivery, to_generation, to_image, to_post, to_project
from studio.store.web import WebRows

__all__ = ["Store", "new_id"]


class Store(CommunityQueries):
    """Users, projects, generations, their images, posts and deliveries; the rest through
    ``CommunityQueries`` and the row classes below (LoRAs, finishes, API keys, interactions)."""

    @property
    def loras(self) -> LoraRows:
        return LoraRows(self)

    @property
    def finishes(self) -> FinishRows:
        return FinishRows(self)

    @property
    def policy(self) -> PolicyRows:
        return PolicyRows(self)

    @property
    def quotas(self) -> QuotaRows:
        return QuotaRows(self)

    @property
    def keys(self) -> KeyRows:
        return KeyRows(self)

    @property
    def interactions(self) -> InteractionRows:
        return InteractionRows(self)

    @property
    def removal(self) -> RemovalRows:
        return RemovalRows(self)

    @property
    def web(self) -> WebRows:
        return WebRows(self)

    @property
    def library(self) -> LibraryRows:
        return LibraryRows(self)

    # Users and projects

    async def ensure_user(self, user_id: str, name: str) -> None:
        await self._write(
            "INSERT INTO users (id, name, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            (user_id, name, time.time()),
        )

    async def user_name(self, user_id: str) -> str | None:
        row = await self._one("SELECT name FROM users WHERE id = ?", (user_id,))
        return str(row["name"]) if row else None

    async def create_project(
        self, owner_id: str, name: str, thread_id: str | None = None, server: str | None = None
    ) -> Project:
        project = Project(new_id(), owner_id, name[:100], thread_id, time.time(), server)
        await self._write(
            "INSERT INTO projects (id, owner_id, name, thread_id, created_at, server) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (project.id, project.owner_id, project.name, project.thread_id, project.created_at, server),
        )
        return project

    async def project_by_name(self, owner_id: str, name: str) -> Project | None:
        row = await self._one(
            "SELECT * FROM projects WHERE owner_id = ? AND name = ? ORDER BY created_at LIMIT 1",
            (owner_id, name),
        )
        return to_project(row) if row else None

    async def project_by_thread(self, thread_id: str) -> Project | None:
        row = await self._one("SELECT * FROM projects WHERE thread_id = ?", (thread_id,))
        return to_project(row) if row else None

    # Generations

    async def add_generation(
        self,
        generation_id: str,
        project_id: str,
        owner_id: str,
        recipe: Recipe,
        private: bool = False,
        server: str | None = None,
        limit: int | None = None,
    ) -> bool:
        """Record a queued generation; with ``limit``, only while its owner has fewer in flight.

        The count and the insert are one transaction locked on the owner, so two submits
        (coroutines, processes or hosts) cannot both pass. False: refused.
        """
        async with self._transaction(lock=f"in flight:{owner_id}") as tx:
            if limit is not None:
                rows = await tx.fetch(
                    "SELECT COUNT(*) AS n FROM generations "
                    "WHERE owner_id = ? AND status IN ('queued', 'running')",
                    (owner_id,),
                )
                if int(rows[0]["n"]) >= limit:
                    return False
            await tx.execute(
                "INSERT INTO generations (id, project_id, owner_id, recipe_json, status, created_at, "
                "private, server) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (generation_id, project_id, owner_id, recipe.to_json(), time.time(), int(private), server),
            )
        return True

    async def delete_generation(self, generation_id: str) -> None:
        """Only for a generation that never reached the queue."""
        await self._write("DELETE FROM generations WHERE id = ? AND status = 'queued'", (generation_id,))

    async def mark_running(self, generation_id: str, attempt: int) -> None:
        await self._write(
            "UPDATE generations SET status = 'running', attempts = MAX(attempts, ?), "
            "started_at = COALESCE(started_at, ?) WHERE id = ? AND status IN ('queued', 'running')",
            (attempt, time.time(), generation_id),
        )

    async def finish_generation(
        self,
        generation_id: str,
        images: list[tuple[int, str, Recipe]],
        grid_artifact: str | None,
        worker_seconds: float,
        attempts: int,
        load_seconds: float = 0.0,
    ) -> bool:
        """Record the images of a finished generation once; False if it was already recorded."""
        gen = await self.get_generation(generation_id)
        now = time.time()
        async with self._transaction() as tx:
            for index, artifact, recipe in images:
                await tx.execute(
                    "INSERT INTO images (id, generation_id, idx, artifact, recipe_json, seed, "
                    "width, height, parent_image_id, owner_id, public, created_at, server) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        new_id(),
                        generation_id,
                        index,
                        artifact,
                        recipe.to_json(),
                        recipe.seed,
                        recipe.width,
                        recipe.height,
                        recipe.parent_image,
                        gen.owner_id,
                        int(not gen.private),
                        now,
                        gen.server,
                    ),
                )
            changed = await tx.execute(
                "UPDATE generations SET status = 'done', error = NULL, finished_at = ?, worker_seconds = ?, "
                "load_seconds = ?, attempts = MAX(attempts, ?), grid_artifact = ?, "
                "started_at = COALESCE(started_at, ?) WHERE id = ? AND status != 'done'",
                (now, worker_seconds, load_seconds, attempts, grid_artifact, now, generation_id),
            )
        return changed > 0

    async def end_generation(self, generation_id: str, status: Status, error: str | None) -> None:
        await self._write(
            "UPDATE generations SET status = ?, error = ?, finished_at = ? "
            "WHERE id = ? AND status IN ('queued', 'running')",
            (status, error, time.time(), generation_id),
        )

    async def count_requeue(self, generation_id: str, limit: int) -> bool:
        """Count one more re-enqueue of an unfinished generation's job; False once ``limit`` were made.

        One UPDATE: front ends that find the same job gone at once cannot both pass the limit.
        """
        changed = await self._write(
            "UPDATE generations SET requeues = requeues + 1 "
            "WHERE id = ? AND status IN ('queued', 'running') AND requeues < ?",
            (generation_id, limit),
        )
        return changed > 0

    async def get_generation(self, generation_id: str) -> Generation:
        row = await self._one("SELECT * FROM generations WHERE id = ?", (generation_id,))
        if row is None:
            raise NotFound(f"No generation with id {generation_id}.")
        return to_generation(row)

    async def list_generations(self, owner_id: str | None = None, limit: int = 20) -> list[Generation]:
        if owner_id is None:
            rows = await self._all("SELECT * FROM generations ORDER BY created_at DESC LIMIT ?", (limit,))
        else:
            rows = await self._all(
                "SELECT * FROM generations WHERE owner_id = ? ORDER BY created_at DESC LIMIT ?",
                (owner_id, limit),
            )
        return [to_generation(r) for r in rows]

    async def unfinished_generations(self) -> list[Generation]:
        rows = await self._all(
            "SELECT * FROM generations WHERE status IN ('queued', 'running') ORDER BY created_at"
        )
        return [to_generation(r) for r in rows]

    async def images_of(self, generation_id: str) -> list[ImageRecord]:
        rows = await self._all("SELECT * FROM images WHERE generation_id = ? ORDER BY idx", (generation_id,))
        return [to_image(r) for r in rows]

    async def count_in_flight(self, owner_id: str) -> int:
        row = await self._one(
            "SELECT COUNT(*) AS n FROM generations WHERE owner_id = ? AND status IN ('queued', 'running')",
            (owner_id,),
        )
        return int(row["n"]) if row else 0

    async def in_flight(self, owner_id: str) -> list[Generation]:
        rows = await self._all(
            "SELECT * FROM generations WHERE owner_id = ? AND status IN ('queued', 'running') "
            "ORDER BY created_at",
            (owner_id,),
        )
        return [to_generation(r) for r in rows]

    async def image_at(self, generation_id: str, index: int) -> ImageRecord:
        row = await self._one(
            "SELECT * FROM images WHERE generation_id = ? AND idx = ?", (generation_id, index)
        )
        if row is None:
            raise NotFound(f"Image {index + 1} of that generation does not exist.")
        return to_image(row)

    async def get_project(self, project_id: str) -> Project:
        row = await self._one("SELECT * FROM projects WHERE id = ?", (project_id,))
        if row is None:
            raise NotFound("That project does not exist.")
        return to_project(row)

    # Posts and deliveries (front ends' messages)

    async def add_post(
        self, message_id: str, channel_id: str, generation_id: str, kind: str, image_index: int | None = None
    ) -> None:
        await self._write(
            "INSERT INTO posts (message_id, channel_id, generation_id, image_index, kind, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (message_id, channel_id, generation_id, image_index, kind, time.time()),
        )

    async def post(self, message_id: str) -> Post | None:
        row = await self._one("SELECT * FROM posts WHERE message_id = ?", (message_id,))
        if row is None:
            return None
        return to_post(row)

    async def posts_of(self, generation_id: str) -> list[Post]:
        rows = await self._all(
            "SELECT * FROM posts WHERE generation_id = ? ORDER BY created_at", (generation_id,)
        )
        return [to_post(r) for r in rows]

    async def add_delivery(self, generation_id: str, channel_id: str, status_message_id: str | None) -> None:
        await self._write(
            "INSERT INTO deliveries (generation_id, channel_id, status_message_id) "
            "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (generation_id, channel_id, status_message_id),
        )

    async def set_status_message(self, generation_id: str, channel_id: str, status_message_id: str) -> None:
        await self._write(
            "UPDATE deliveries SET channel_id = ?, status_message_id = ? WHERE generation_id = ?",
            (channel_id, status_message_id, generation_id),
        )

    async def mark_delivered(self, generation_id: str) -> bool:
        """True for the one caller that marks it; False if it was already delivered."""
        changed = await self._write(
            "UPDATE deliveries SET delivered_at = ? WHERE generation_id = ? AND delivered_at IS NULL",
            (time.time(), generation_id),
        )
        return changed > 0

    async def delivery(self, generation_id: str) -> Delivery | None:
        row = await self._one("SELECT * FROM deliveries WHERE generation_id = ?", (generation_id,))
        if row is None:
            return None
        return to_delivery(row)

    async def undelivered(self) -> list[Delivery]:
        rows = await self._all("SELECT * FROM deliveries WHERE delivered_at IS NULL")
        return [to_delivery(r) for r in rows]
