"""A person's own work in one server, for their library: projects with their images, trained
models and finishes. Only ever the owner's rows.

What belongs to a server: images, projects and LoRA runs carry the server they were made in;
finishes carry none, so a finish follows its source image. Rows without a server (the command
line, API keys minted outside a server, rows older than migration 010, imports, uploads) belong
to no community and appear in each of their owner's libraries: only the owner sees a library.
A project found by name is reused across servers (``Store.project_by_name``), so a project also
appears in a server where its owner made images in it, showing only those images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from studio.entities import Finish, ImageRecord, Lora, Project
from studio.store.finishes import _finish
from studio.store.loras import _lora
from studio.store.rows import to_image, to_project

if TYPE_CHECKING:
    from studio.store.repository import Store

# The person's images of the server (or of none), joined to their generations.
_IMAGES = (
    "FROM images JOIN generations ON generations.id = images.generation_id "
    "WHERE images.owner_id = ? AND (images.server = ? OR images.server IS NULL)"
)


@dataclass(frozen=True)
class ProjectImages:
    """The newest images of one project (at most the number asked for) and how many there are."""

    images: list[ImageRecord]
    total: int


class LibraryRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def projects(self, owner_id: str, server: str, limit: int, offset: int = 0) -> list[Project]:
        """The owner's projects of this server (or of none, or holding their images made here),
        the most recently used first."""
        rows = await self.store._all(
            "SELECT projects.* FROM projects WHERE projects.owner_id = ? AND ("
            " projects.server = ? OR projects.server IS NULL OR EXISTS ("
            "  SELECT 1 FROM generations JOIN images ON images.generation_id = generations.id"
            "  WHERE generations.project_id = projects.id AND images.owner_id = ? AND images.server = ?))"
            " ORDER BY COALESCE((SELECT MAX(generations.created_at) FROM generations"
            "  WHERE generations.project_id = projects.id), projects.created_at) DESC, projects.id"
            " LIMIT ? OFFSET ?",
            (owner_id, server, owner_id, server, limit, offset),
        )
        return [to_project(r) for r in rows]

    async def project(self, owner_id: str, server: str, project_id: str) -> Project | None:
        """One project as ``projects`` would list it; None for another person's or another server's."""
        row = await self.store._one(
            "SELECT projects.* FROM projects WHERE projects.id = ? AND projects.owner_id = ? AND ("
            " projects.server = ? OR projects.server IS NULL OR EXISTS ("
            "  SELECT 1 FROM generations JOIN images ON images.generation_id = generations.id"
            "  WHERE generations.project_id = projects.id AND images.owner_id = ? AND images.server = ?))",
            (project_id, owner_id, server, owner_id, server),
        )
        return to_project(row) if row else None

    async def newest_images(
        self, owner_id: str, server: str, project_ids: list[str], per_project: int
    ) -> dict[str, ProjectImages]:
        """Each project's newest ``per_project`` images of the owner's here, and their count."""
        if not project_ids:
            return {}
        marks = ", ".join("?" for _ in project_ids)
        ranked = (  # constant text and one "?" per project: no value is spliced in
            "SELECT images.*, generations.project_id AS project_id,"
            " ROW_NUMBER() OVER (PARTITION BY generations.project_id"
            "  ORDER BY images.created_at DESC, images.generation_id, images.idx) AS place,"
            " COUNT(*) OVER (PARTITION BY generations.project_id) AS total "
            f"{_IMAGES} AND generations.project_id IN ({marks})"
        )
        rows = await self.store._all(
            f"SELECT * FROM ({ranked}) AS ranked WHERE place <= ? ORDER BY place",  # noqa: S608
            (owner_id, server, *project_ids, per_project),
        )
        images: dict[str, list[ImageRecord]] = {project_id: [] for project_id in project_ids}
        totals: dict[str, int] = {}
        for row in rows:
            images[row["project_id"]].append(to_image(row))
            totals[row["project_id"]] = int(row["total"])
        return {
            project_id: ProjectImages(images[project_id], totals.get(project_id, 0)) for project_id in images
        }

    async def project_images(
        self, owner_id: str, server: str, project_id: str, limit: int, offset: int = 0
    ) -> ProjectImages:
        """One page of a project's images of the owner's here, newest first, and their count."""
        rows = await self.store._all(
            f"SELECT images.* {_IMAGES} AND generations.project_id = ? "
            "ORDER BY images.created_at DESC, images.generation_id, images.idx LIMIT ? OFFSET ?",
            (owner_id, server, project_id, limit, offset),
        )
        count = await self.store._one(
            f"SELECT COUNT(*) AS n {_IMAGES} AND generations.project_id = ?",
            (owner_id, server, project_id),
        )
        return ProjectImages([to_image(r) for r in rows], int(count["n"]) if count else 0)

    async def loras(self, owner_id: str, server: str, limit: int) -> list[Lora]:
        """The owner's training runs and models of this server (or of none), not deleted, newest first."""
        rows = await self.store._all(
            "SELECT * FROM loras WHERE owner_id = ? AND deleted_at IS NULL "
            "AND (server = ? OR server IS NULL) ORDER BY created_at DESC, id LIMIT ?",
            (owner_id, server, limit),
        )
        return [_lora(r) for r in rows]

    async def lora(self, owner_id: str, server: str, lora_id: str) -> Lora | None:
        """One run as ``loras`` would list it; None for another person's or another server's."""
        row = await self.store._one(
            "SELECT * FROM loras WHERE id = ? AND owner_id = ? AND deleted_at IS NULL "
            "AND (server = ? OR server IS NULL)",
            (lora_id, owner_id, server),
        )
        return _lora(row) if row else None

    async def finishes(self, owner_id: str, server: str, limit: int) -> list[Finish]:
        """The owner's upscales, grades and exports of images of this server (or of uploads), newest
        first."""
        rows = await self.store._all(
            "SELECT finishes.* FROM finishes LEFT JOIN images ON images.id = finishes.source_image "
            "WHERE finishes.owner_id = ? AND (images.server = ? OR images.server IS NULL) "
            "ORDER BY finishes.created_at DESC, finishes.id LIMIT ?",
            (owner_id, server, limit),
        )
        return [_finish(r) for r in rows]

    async def finish(self, owner_id: str, server: str, finish_id: str) -> Finish | None:
        """One finish as ``finishes`` would list it; None for another person's or another server's."""
        row = await self.store._one(
            "SELECT finishes.* FROM finishes LEFT JOIN images ON images.id = finishes.source_image "
            "WHERE finishes.id = ? AND finishes.owner_id = ? "
            "AND (images.server = ? OR images.server IS NULL)",
            (finish_id, owner_id, server),
        )
        return _finish(row) if row else None
