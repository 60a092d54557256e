"""What a server's members share and keep: remix channels, the feed, mood boards, brainstorms,
lineage, defaults and favourites; and the recent run times the queue's ETA is taken from."""

from __future__ import annotations

import time
from typing import Any

from studio.entities import BoardItem, Ideation, ImageRecord
from studio.errors import NotFound
from studio.store.connection import Connection, new_id
from studio.store.rows import to_image


class CommunityQueries(Connection):
    # Remix channels

    async def remix_channels(self, server: str) -> list[str]:
        rows = await self._all(
            "SELECT channel_id FROM remix_channels WHERE server = ? ORDER BY created_at", (server,)
        )
        return [str(r["channel_id"]) for r in rows]

    async def set_remix_channel(self, server: str, channel_id: str, added_by: str, on: bool) -> None:
        if on:
            await self._write(
                "INSERT INTO remix_channels (server, channel_id, added_by, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (server, channel_id, added_by, time.time()),
            )
        else:
            await self._write(
                "DELETE FROM remix_channels WHERE server = ? AND channel_id = ?", (server, channel_id)
            )

    # The community feed

    async def top_public_images(
        self,
        server: str | None,
        since: float,
        model: str | None,
        style: str | None,
        limit: int,
        offset: int,
        flagged: bool = False,
        creator: str | None = None,
    ) -> list[tuple[ImageRecord, int, int]]:
        """Public images of one server's finished generations since ``since`` (``server`` None: those
        made outside any server), most favoured and remixed first, with their favourite and remix
        counts (counted everywhere: a count shows no image or link of another server). Images the
        safety classifier flagged only with ``flagged`` (an age-restricted channel asks); only
        ``creator``'s (an owner id) when given."""
        rows = await self._all(
            "SELECT * FROM (SELECT images.*, "
            " (SELECT COUNT(*) FROM favourites WHERE favourites.image_id = images.id) AS favs,"
            " (SELECT COUNT(*) FROM images AS kids WHERE kids.parent_image_id = images.id) AS remixes "
            "FROM images JOIN generations ON generations.id = images.generation_id "
            "WHERE images.public = 1 AND generations.status = 'done' AND images.server IS ? "
            " AND (CAST(? AS INTEGER) = 1 OR images.flagged = 0) AND images.created_at >= ? "
            " AND (CAST(? AS TEXT) IS NULL OR json_extract(images.recipe_json, '$.model') = ?) "
            " AND (CAST(? AS TEXT) IS NULL OR json_extract(images.recipe_json, '$.style') = ?)"
            " AND (CAST(? AS TEXT) IS NULL OR images.owner_id = ?)"
            ") AS feed ORDER BY favs + remixes DESC, favs DESC, created_at DESC, idx LIMIT ? OFFSET ?",
            (server, int(flagged), since, model, model, style, style, creator, creator, limit, offset),
        )
        return [(to_image(r), int(r["favs"]), int(r["remixes"])) for r in rows]

    async def public_creators(self, server: str | None, flagged: bool = False) -> list[tuple[str, str]]:
        """The people with public images in ``server`` (as the feed shows them), by name: (id, name)."""
        rows = await self._all(
            "SELECT DISTINCT users.id, users.name FROM images "
            "JOIN generations ON generations.id = images.generation_id "
            "JOIN users ON users.id = images.owner_id "
            "WHERE images.public = 1 AND generations.status = 'done' AND images.server IS ? "
            " AND (CAST(? AS INTEGER) = 1 OR images.flagged = 0) "
            "ORDER BY users.name, users.id",
            (server, int(flagged)),
        )
        return [(str(r["id"]), str(r["name"])) for r in rows]

    async def favourite_standing(self, image_id: str, user_id: str) -> tuple[int, bool]:
        """How many people favour an image, and whether ``user_id`` is one of them."""
        row = await self._one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN user_id = ? THEN 1 ELSE 0 END), 0) AS mine "
            "FROM favourites WHERE image_id = ?",
            (user_id, image_id),
        )
        return (int(row["n"]), bool(row["mine"])) if row else (0, False)

    # Mood boards

    async def sample_image(
        self, model_id: str, server: str | None, flagged: bool = False
    ) -> ImageRecord | None:
        """The most favoured public image of ``server`` made with a base model alone (a flagged one
        only with ``flagged``: an age-restricted channel asks)."""
        row = await self._one(
            "SELECT images.*, (SELECT COUNT(*) FROM favourites WHERE image_id = images.id) AS favs "
            "FROM images WHERE public = 1 AND server IS ? AND json_extract(recipe_json, '$.model') = ? "
            "AND COALESCE(json_array_length(recipe_json, '$.loras'), 0) = 0 "
            "AND (CAST(? AS INTEGER) = 1 OR flagged = 0) "
            "ORDER BY favs DESC, created_at DESC LIMIT 1",
            (server, model_id, int(flagged)),
        )
        return to_image(row) if row else None

    async def board(self, project_id: str) -> list[BoardItem]:
        rows = await self._all(
            "SELECT * FROM board_items WHERE project_id = ? ORDER BY created_at, id", (project_id,)
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
        return to_image(row)

    async def ancestry(self, image_id: str, limit: int = 50) -> list[ImageRecord]:
        """The image, its parent, its parent's parent... back to the original (at most ``limit``)."""
        rows = await self._all(
            "WITH RECURSIVE chain(id, depth) AS ("
            " SELECT CAST(? AS TEXT), 0"
            " UNION ALL"
            " SELECT images.parent_image_id, chain.depth + 1 FROM images JOIN chain ON images.id = chain.id"
            " WHERE images.parent_image_id IS NOT NULL AND chain.depth < ?"
            ") SELECT images.* FROM chain JOIN images ON images.id = chain.id ORDER BY chain.depth",
            (image_id, limit - 1),
        )
        return [to_image(r) for r in rows]

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

    # Queue estimates (studio.eta)

    async def recent_run_seconds(self, limit: int) -> list[float]:
        """Worker time (pipeline plus any model load) of the latest ``limit`` finished generations."""
        rows = await self._all(
            "SELECT worker_seconds + COALESCE(load_seconds, 0) AS seconds FROM generations "
            "WHERE status = 'done' AND worker_seconds IS NOT NULL ORDER BY finished_at DESC LIMIT ?",
            (limit,),
        )
        return [float(r["seconds"]) for r in rows]

    # Favourites

    async def set_favourite(self, user_id: str, image_id: str, on: bool) -> None:
        if on:
            await self._write(
                "INSERT INTO favourites (user_id, image_id, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
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
        return [to_image(r) for r in rows]
