"""Erasing generations (a moderator's removal, a person's /forget) and what hangs off them.

Each generation goes in its own transaction: a crash halfway leaves whole generations, never
half of one. Children made from an erased image keep their rows, with no parent link.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from studio.entities import Post
from studio.recipe import Recipe
from studio.store.backend import Row
from studio.store.rows import to_post

if TYPE_CHECKING:
    from studio.store.repository import Store

# Settled: finished, and shown wherever it was to be shown (a result being posted right now is
# left alone, or the front end would record a post for a generation that is gone).
SETTLED = (
    "status IN ('done', 'failed', 'cancelled') AND NOT EXISTS (SELECT 1 FROM deliveries "
    "WHERE deliveries.generation_id = generations.id AND deliveries.delivered_at IS NULL)"
)


@dataclass
class ErasedRows:
    """What one or more erasures took away: counts, the files they may free, the messages to delete."""

    generations: int = 0
    images: int = 0
    digests: set[str] = field(default_factory=set)
    posts: list[Post] = field(default_factory=list)


class RemovalRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def finished_generations(self, owner_id: str, project_id: str | None = None) -> list[str]:
        """Ids of the person's finished generations (in one project, if given), oldest first."""
        sql = f"SELECT id FROM generations WHERE owner_id = ? AND {SETTLED}"  # noqa: S608
        args: list[Any] = [owner_id]
        if project_id is not None:
            sql += " AND project_id = ?"
            args.append(project_id)
        return [str(r["id"]) for r in await self.store._all(sql + " ORDER BY created_at", args)]

    async def count_images(self, generation_ids: list[str]) -> int:
        total = 0
        for generation_id in generation_ids:
            row = await self.store._one(
                "SELECT COUNT(*) AS n FROM images WHERE generation_id = ?", (generation_id,)
            )
            total += int(row["n"]) if row else 0
        return total

    async def unfinished_count(self, owner_id: str, project_id: str | None = None) -> int:
        sql = f"SELECT COUNT(*) AS n FROM generations WHERE owner_id = ? AND NOT ({SETTLED})"  # noqa: S608
        args: list[Any] = [owner_id]
        if project_id is not None:
            sql += " AND project_id = ?"
            args.append(project_id)
        row = await self.store._one(sql, args)
        return int(row["n"]) if row else 0

    async def erase_generation(self, generation_id: str, into: ErasedRows) -> None:
        """Delete a finished generation, its images and everything recorded about them."""
        store = self.store
        gen = await store._one(
            "SELECT * FROM generations WHERE id = ? AND status IN ('done', 'failed', 'cancelled')",
            (generation_id,),
        )
        if gen is None:
            return  # already erased, or still running
        images = await store._all("SELECT id, artifact FROM images WHERE generation_id = ?", (generation_id,))
        image_ids = [str(r["id"]) for r in images]
        posts = [
            to_post(r)
            for r in await store._all("SELECT * FROM posts WHERE generation_id = ?", (generation_id,))
        ]
        delivery = await store._one("SELECT * FROM deliveries WHERE generation_id = ?", (generation_id,))
        finishes: list[Row] = []
        for image_id in image_ids:
            finishes += await store._all("SELECT * FROM finishes WHERE source_image = ?", (image_id,))
        children = await self._children(image_ids, generation_id)
        now = time.time()
        async with store._transaction() as tx:
            for table, recipe_json, key in children:
                await tx.execute(f"UPDATE {table} SET recipe_json = ? WHERE id = ?", (recipe_json, key))  # noqa: S608
                if table == "images":
                    await tx.execute(
                        "UPDATE images SET parent_image_id = NULL, parent_removed_at = ? WHERE id = ?",
                        (now, key),
                    )
            for image_id in image_ids:
                await tx.execute("DELETE FROM favourites WHERE image_id = ?", (image_id,))
                await tx.execute("DELETE FROM finishes WHERE source_image = ?", (image_id,))
            for table in ("posts", "deliveries", "api_generations", "interactions"):
                await tx.execute(f"DELETE FROM {table} WHERE generation_id = ?", (generation_id,))  # noqa: S608
            await tx.execute("DELETE FROM images WHERE generation_id = ?", (generation_id,))
            await tx.execute("DELETE FROM generations WHERE id = ?", (generation_id,))
        recipe = Recipe.from_json(gen["recipe_json"])
        into.generations += 1
        into.images += len(image_ids)
        into.digests.update(str(r["artifact"]) for r in images)
        into.digests.update(d for d in (gen["grid_artifact"], recipe.init_image, recipe.mask) if d)
        for finish in finishes:
            into.digests.update(d for d in (finish["source"], finish["artifact"], finish["preview"]) if d)
        into.posts += posts
        if delivery is not None and delivery["status_message_id"] not in {
            None,
            *(p.message_id for p in posts),
        }:
            shown = Post(delivery["status_message_id"], delivery["channel_id"], generation_id, None, "status")
            into.posts.append(shown)

    async def _children(self, image_ids: list[str], generation_id: str) -> list[tuple[str, str, str]]:
        """(table, recipe JSON without the parent, row id) of other rows made from these images."""
        found: list[tuple[str, str, str]] = []
        for image_id in image_ids:
            pattern = f'%"{image_id}"%'  # a recipe's parent_image; ids are hex, nothing to escape
            for table in ("images", "generations"):
                rows = await self.store._all(
                    f"SELECT id, recipe_json FROM {table} WHERE recipe_json LIKE ? AND "  # noqa: S608
                    f"{'generation_id' if table == 'images' else 'id'} != ?",
                    (pattern, generation_id),
                )
                for row in rows:
                    recipe = Recipe.from_json(row["recipe_json"])
                    if recipe.parent_image == image_id:
                        found.append(
                            (table, recipe.model_copy(update={"parent_image": None}).to_json(), row["id"])
                        )
        return found

    async def forget_personal(self, owner_id: str, project_id: str | None, into: ErasedRows) -> None:
        """The rest of what a person keeps: favourites, board items, training sets, brainstorms,
        defaults and emptied projects (all of them, or just ``project_id``)."""
        store = self.store
        if project_id is None:
            for row in await store._all("SELECT artifact FROM board_items WHERE added_by = ?", (owner_id,)):
                into.digests.add(str(row["artifact"]))
            for row in await store._all(
                "SELECT artifact FROM training_set_items WHERE owner_id = ?", (owner_id,)
            ):
                into.digests.add(str(row["artifact"]))
            await store._write("DELETE FROM favourites WHERE user_id = ?", (owner_id,))
            await store._write("DELETE FROM board_items WHERE added_by = ?", (owner_id,))
            await store._write("DELETE FROM training_set_items WHERE owner_id = ?", (owner_id,))
            await store._write("DELETE FROM defaults WHERE scope = 'user' AND owner = ?", (owner_id,))
            projects = await store._all("SELECT id FROM projects WHERE owner_id = ?", (owner_id,))
        else:
            projects = await store._all("SELECT id FROM projects WHERE id = ?", (project_id,))
        for project in projects:
            pid = project["id"]
            busy = await store._one(
                "SELECT 1 FROM generations WHERE project_id = ? "
                "UNION ALL SELECT 1 FROM loras WHERE project_id = ?",
                (pid, pid),
            )
            if busy is not None:
                continue  # still has work in flight, or a model trained from it
            for row in await store._all("SELECT artifact FROM board_items WHERE project_id = ?", (pid,)):
                into.digests.add(str(row["artifact"]))
            await store._write("DELETE FROM board_items WHERE project_id = ?", (pid,))
            await store._write("DELETE FROM ideations WHERE project_id = ?", (pid,))
            await store._write("DELETE FROM projects WHERE id = ?", (pid,))

    async def digest_in_use(self, sha: str) -> bool:
        """Whether any row still refers to an artifact (files are shared by content)."""
        like = f"%{sha}%"
        row = await self.store._one(
            "SELECT 1 FROM images WHERE artifact = ? OR recipe_json LIKE ? "
            "UNION ALL SELECT 1 FROM generations WHERE grid_artifact = ? OR recipe_json LIKE ? "
            "UNION ALL SELECT 1 FROM board_items WHERE artifact = ? "
            "UNION ALL SELECT 1 FROM training_set_items WHERE artifact = ? "
            "UNION ALL SELECT 1 FROM finishes WHERE source = ? OR artifact = ? OR preview = ? "
            "UNION ALL SELECT 1 FROM loras WHERE weights LIKE ? OR kohya LIKE ? OR sample LIKE ? "
            " OR comparison LIKE ? OR dataset_json LIKE ?",
            (sha, like, sha, like, sha, sha, sha, sha, sha, like, like, like, like, like),
        )
        return row is not None

    async def parent_removed(self, image_id: str) -> bool:
        row = await self.store._one("SELECT parent_removed_at FROM images WHERE id = ?", (image_id,))
        return row is not None and row["parent_removed_at"] is not None
