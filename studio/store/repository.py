"""The SQLite store (aiosqlite, WAL). Every write that must happen once is idempotent."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from studio.entities import BoardItem, Delivery, Generation, Ideation, ImageRecord, Post, Project, Status
from studio.errors import NotFound
from studio.recipe import Recipe
from studio.store.finishes import FinishRows
from studio.store.interactions import InteractionRows
from studio.store.keys import KeyRows
from studio.store.loras import LoraRows
from studio.store.migrations import migrate


def new_id() -> str:
    return uuid.uuid4().hex


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> Store:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)  # explicit transactions
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        await migrate(db)
        self._db = db
        return self

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> Store:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def loras(self) -> LoraRows:
        return LoraRows(self)

    @property
    def finishes(self) -> FinishRows:
        return FinishRows(self)

    @property
    def keys(self) -> KeyRows:
        return KeyRows(self)

    @property
    def interactions(self) -> InteractionRows:
        return InteractionRows(self)

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("Store is not open")
        return self._db

    async def _write(self, sql: str, args: Iterable[Any] = ()) -> int:
        """One write statement; returns the rows it changed.

        All writes share one connection, so they take turns with the transactions: a statement
        from another coroutine must never land inside (or be rolled back with) someone's
        transaction.
        """
        async with self._lock:
            cursor = await self.db.execute(sql, tuple(args))
            return cursor.rowcount

    async def _insert(self, table: str, row: dict[str, Any]) -> None:
        """One row from a dict whose keys are column names (always ours, never user input)."""
        columns, marks = ", ".join(row), ", ".join("?" for _ in row)
        await self._write(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row.values())  # noqa: S608

    # Reads run and finish in one call on the connection's thread: a SELECT left open across an
    # await holds a read snapshot, and a write from another coroutine then cannot take the write
    # lock once another process (API, CLI) has written: SQLite answers "database is locked" at
    # once instead of waiting.

    async def _one(self, sql: str, args: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self._all(sql, args)
        return rows[0] if rows else None

    async def _all(self, sql: str, args: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self.db.execute_fetchall(sql, tuple(args)))

    # Users and projects

    async def ensure_user(self, user_id: str, name: str) -> None:
        await self._write(
            "INSERT INTO users (id, name, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            (user_id, name, time.time()),
        )

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
        return _project(row) if row else None

    async def project_by_thread(self, thread_id: str) -> Project | None:
        row = await self._one("SELECT * FROM projects WHERE thread_id = ?", (thread_id,))
        return _project(row) if row else None

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

        The count and the insert are one INSERT … SELECT: SQLite takes the write lock before it
        counts, so two submits (coroutines or processes) cannot both pass. False: refused.
        """
        changed = await self._write(
            "INSERT INTO generations (id, project_id, owner_id, recipe_json, status, created_at, private, "
            "server) SELECT ?, ?, ?, ?, 'queued', ?, ?, ? WHERE ? IS NULL OR (SELECT COUNT(*) "
            "FROM generations WHERE owner_id = ? AND status IN ('queued', 'running')) < ?",
            (
                generation_id,
                project_id,
                owner_id,
                recipe.to_json(),
                time.time(),
                int(private),
                server,
                limit,
                owner_id,
                limit,
            ),
        )
        return changed > 0

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
        async with self._lock:
            return await self._record_images(
                gen, images, grid_artifact, worker_seconds, attempts, load_seconds, now
            )

    async def _record_images(
        self,
        gen: Generation,
        images: list[tuple[int, str, Recipe]],
        grid_artifact: str | None,
        worker_seconds: float,
        attempts: int,
        load_seconds: float,
        now: float,
    ) -> bool:
        generation_id = gen.id
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            for index, artifact, recipe in images:
                await self.db.execute(
                    "INSERT OR IGNORE INTO images (id, generation_id, idx, artifact, recipe_json, seed, "
                    "width, height, parent_image_id, owner_id, public, created_at, server) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            cursor = await self.db.execute(
                "UPDATE generations SET status = 'done', error = NULL, finished_at = ?, worker_seconds = ?, "
                "load_seconds = ?, attempts = MAX(attempts, ?), grid_artifact = ?, "
                "started_at = COALESCE(started_at, ?) WHERE id = ? AND status != 'done'",
                (now, worker_seconds, load_seconds, attempts, grid_artifact, now, generation_id),
            )
            changed = cursor.rowcount > 0
            await self.db.execute("COMMIT")
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise
        return changed

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
        return _generation(row)

    async def list_generations(self, owner_id: str | None = None, limit: int = 20) -> list[Generation]:
        if owner_id is None:
            rows = await self._all("SELECT * FROM generations ORDER BY created_at DESC LIMIT ?", (limit,))
        else:
            rows = await self._all(
                "SELECT * FROM generations WHERE owner_id = ? ORDER BY created_at DESC LIMIT ?",
                (owner_id, limit),
            )
        return [_generation(r) for r in rows]

    async def unfinished_generations(self) -> list[Generation]:
        rows = await self._all(
            "SELECT * FROM generations WHERE status IN ('queued', 'running') ORDER BY created_at"
        )
        return [_generation(r) for r in rows]

    async def images_of(self, generation_id: str) -> list[ImageRecord]:
        rows = await self._all("SELECT * FROM images WHERE generation_id = ? ORDER BY idx", (generation_id,))
        return [_image(r) for r in rows]

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
        return [_generation(r) for r in rows]

    async def image_at(self, generation_id: str, index: int) -> ImageRecord:
        row = await self._one(
            "SELECT * FROM images WHERE generation_id = ? AND idx = ?", (generation_id, index)
        )
        if row is None:
            raise NotFound(f"Image {index + 1} of that generation does not exist.")
        return _image(row)

    async def get_project(self, project_id: str) -> Project:
        row = await self._one("SELECT * FROM projects WHERE id = ?", (project_id,))
        if row is None:
            raise NotFound("That project does not exist.")
        return _project(row)

    # Posts and deliveries (front ends' messages)

    async def add_post(
        self, message_id: str, channel_id: str, generation_id: str, kind: str, image_index: int | None = None
    ) -> None:
        await self._write(
            "INSERT OR IGNORE INTO posts (message_id, channel_id, generation_id, image_index, kind, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (message_id, channel_id, generation_id, image_index, kind, time.time()),
        )

    async def post(self, message_id: str) -> Post | None:
        row = await self._one("SELECT * FROM posts WHERE message_id = ?", (message_id,))
        if row is None:
            return None
        return _post(row)

    async def posts_of(self, generation_id: str) -> list[Post]:
        rows = await self._all(
            "SELECT * FROM posts WHERE generation_id = ? ORDER BY created_at", (generation_id,)
        )
        return [_post(r) for r in rows]

    async def add_delivery(self, generation_id: str, channel_id: str, status_message_id: str | None) -> None:
        await self._write(
            "INSERT OR IGNORE INTO deliveries (generation_id, channel_id, status_message_id) "
            "VALUES (?, ?, ?)",
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
        return _delivery(row)

    async def undelivered(self) -> list[Delivery]:
        rows = await self._all("SELECT * FROM deliveries WHERE delivered_at IS NULL")
        return [_delivery(r) for r in rows]

    # Remix channels

    async def remix_channels(self, server: str) -> list[str]:
        rows = await self._all(
            "SELECT channel_id FROM remix_channels WHERE server = ? ORDER BY created_at", (server,)
        )
        return [str(r["channel_id"]) for r in rows]

    async def set_remix_channel(self, server: str, channel_id: str, added_by: str, on: bool) -> None:
        if on:
            await self._write(
                "INSERT OR IGNORE INTO remix_channels (server, channel_id, added_by, created_at) "
                "VALUES (?, ?, ?, ?)",
                (server, channel_id, added_by, time.time()),
            )
        else:
            await self._write(
                "DELETE FROM remix_channels WHERE server = ? AND channel_id = ?", (server, channel_id)
            )

    # The community feed

    async def top_public_images(
        self, server: str | None, since: float, model: str | None, style: str | None, limit: int, offset: int
    ) -> list[tuple[ImageRecord, int, int]]:
        """Public images of one server's finished generations since ``since`` (``server`` None: those
        made outside any server), most favoured and remixed first, with their favourite and remix
        counts (counted everywhere: a count shows no image or link of another server)."""
        rows = await self._all(
            "SELECT images.*, "
            " (SELECT COUNT(*) FROM favourites WHERE favourites.image_id = images.id) AS favs,"
            " (SELECT COUNT(*) FROM images AS kids WHERE kids.parent_image_id = images.id) AS remixes "
            "FROM images JOIN generations ON generations.id = images.generation_id "
            "WHERE images.public = 1 AND generations.status = 'done' AND images.server IS ? "
            " AND images.created_at >= ? "
            " AND (? IS NULL OR json_extract(images.recipe_json, '$.model') = ?) "
            " AND (? IS NULL OR json_extract(images.recipe_json, '$.style') = ?) "
            "ORDER BY favs + remixes DESC, favs DESC, images.created_at DESC, images.idx LIMIT ? OFFSET ?",
            (server, since, model, model, style, style, limit, offset),
        )
        return [(_image(r), int(r["favs"]), int(r["remixes"])) for r in rows]

    # Mood boards

    async def sample_image(self, model_id: str, server: str | None) -> ImageRecord | None:
        """The most favoured public image of ``server`` made with a base model alone."""
        row = await self._one(
            "SELECT images.*, (SELECT COUNT(*) FROM favourites WHERE image_id = images.id) AS favs "
            "FROM images WHERE public = 1 AND server IS ? AND json_extract(recipe_json, '$.model') = ? "
            "AND COALESCE(json_array_length(recipe_json, '$.loras'), 0) = 0 "
            "ORDER BY favs DESC, created_at DESC LIMIT 1",
            (server, model_id),
        )
        return _image(row) if row else None

    async def board(self, project_id: str) -> list[BoardItem]:
        rows = await self._all(
            "SELECT * FROM board_items WHERE project_id = ? ORDER BY created_at, rowid", (project_id,)
        )
        return [BoardItem(r["id"], r["project_id"], r["artifact"], r["added_by"]) for r in rows]

    async def add_board_item(self, project_id: str, artifact: str, added_by: str) -> None:
        await self._write(
            "INSERT INTO board_items (id, project_id, artifact, added_by, created_at) VALUES (?, ?, ?, ?, ?)",
            (new_id(), project_id, artifact, added_by, time.time()),
        )

    async def remove_board_items(self, project_id: str, item_id: str | None = None) -> None:
        if item_id is None:
            await self._write("DELETE FROM board_items WHERE project_id = ?", (project_id,))
        else:
            await self._write(
                "DELETE FROM board_items WHERE project_id = ? AND id = ?", (project_id, item_id)
            )

    # Ideations

    async def add_ideation(self, ideation: Ideation) -> None:
        await self._write(
            "INSERT INTO ideations (message_id, project_id, owner_id, concept, seed, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                ideation.message_id,
                ideation.project_id,
                ideation.owner_id,
                ideation.concept,
                ideation.seed,
                time.time(),
            ),
        )

    async def ideation(self, message_id: str) -> Ideation | None:
        row = await self._one("SELECT * FROM ideations WHERE message_id = ?", (message_id,))
        if row is None:
            return None
        return Ideation(row["message_id"], row["project_id"], row["owner_id"], row["concept"], row["seed"])

    async def reseed_ideation(self, message_id: str, seed: int) -> None:
        await self._write("UPDATE ideations SET seed = ? WHERE message_id = ?", (seed, message_id))

    # Lineage

    async def image(self, image_id: str) -> ImageRecord:
        row = await self._one("SELECT * FROM images WHERE id = ?", (image_id,))
        if row is None:
            raise NotFound("That image does not exist.")
        return _image(row)

    async def ancestry(self, image_id: str, limit: int = 50) -> list[ImageRecord]:
        """The image, its parent, its parent's parent... back to the original (at most ``limit``)."""
        rows = await self._all(
            "WITH RECURSIVE chain(id, depth) AS ("
            " SELECT ?, 0"
            " UNION ALL"
            " SELECT images.parent_image_id, chain.depth + 1 FROM images JOIN chain ON images.id = chain.id"
            " WHERE images.parent_image_id IS NOT NULL AND chain.depth < ?"
            ") SELECT images.* FROM chain JOIN images ON images.id = chain.id ORDER BY chain.depth",
            (image_id, limit - 1),
        )
        return [_image(r) for r in rows]

    async def remix_count(self, image_id: str) -> int:
        row = await self._one("SELECT COUNT(*) AS n FROM images WHERE parent_image_id = ?", (image_id,))
        return int(row["n"]) if row else 0

    # Defaults (/settings)

    async def defaults(self, scope: str, owner: str) -> str | None:
        row = await self._one("SELECT json FROM defaults WHERE scope = ? AND owner = ?", (scope, owner))
        return str(row["json"]) if row else None

    async def set_defaults(self, scope: str, owner: str, json: str | None) -> None:
        if json is None:
            await self._write("DELETE FROM defaults WHERE scope = ? AND owner = ?", (scope, owner))
        else:
            await self._write(
                "INSERT INTO defaults (scope, owner, json, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(scope, owner) DO UPDATE SET json = excluded.json, "
                "updated_at = excluded.updated_at",
                (scope, owner, json, time.time()),
            )

    # Favourites

    async def set_favourite(self, user_id: str, image_id: str, on: bool) -> None:
        if on:
            await self._write(
                "INSERT OR IGNORE INTO favourites (user_id, image_id, created_at) VALUES (?, ?, ?)",
                (user_id, image_id, time.time()),
            )
        else:
            await self._write(
                "DELETE FROM favourites WHERE user_id = ? AND image_id = ?", (user_id, image_id)
            )

    async def favourites_of(self, user_id: str, project_id: str | None = None) -> list[ImageRecord]:
        sql = (
            "SELECT images.* FROM favourites JOIN images ON images.id = favourites.image_id "
            "JOIN generations ON generations.id = images.generation_id WHERE favourites.user_id = ?"
        )
        args: list[Any] = [user_id]
        if project_id is not None:
            sql += " AND generations.project_id = ?"
            args.append(project_id)
        rows = await self._all(sql + " ORDER BY favourites.created_at", args)
        return [_image(r) for r in rows]


def _post(row: aiosqlite.Row) -> Post:
    return Post(row["message_id"], row["channel_id"], row["generation_id"], row["image_index"], row["kind"])


def _delivery(row: aiosqlite.Row) -> Delivery:
    return Delivery(row["generation_id"], row["channel_id"], row["status_message_id"], row["delivered_at"])


def _project(row: aiosqlite.Row) -> Project:
    return Project(
        row["id"], row["owner_id"], row["name"], row["thread_id"], row["created_at"], row["server"]
    )


def _generation(row: aiosqlite.Row) -> Generation:
    return Generation(
        id=row["id"],
        project_id=row["project_id"],
        owner_id=row["owner_id"],
        recipe=Recipe.from_json(row["recipe_json"]),
        status=row["status"],
        error=row["error"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        worker_seconds=row["worker_seconds"],
        load_seconds=row["load_seconds"],
        grid_artifact=row["grid_artifact"],
        private=bool(row["private"]),
        server=row["server"],
    )


def _image(row: aiosqlite.Row) -> ImageRecord:
    return ImageRecord(
        id=row["id"],
        generation_id=row["generation_id"],
        index=row["idx"],
        artifact=row["artifact"],
        recipe=Recipe.from_json(row["recipe_json"]),
        seed=row["seed"],
        width=row["width"],
        height=row["height"],
        parent_image_id=row["parent_image_id"],
        owner_id=row["owner_id"],
        public=bool(row["public"]),
        created_at=row["created_at"],
        server=row["server"],
    )
