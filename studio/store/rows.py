"""Rows of the store's tables as the records the use cases pass around."""

from __future__ import annotations

from studio.entities import Delivery, Generation, ImageRecord, Post, Project
from studio.recipe import Recipe
from studio.store.backend import Row


def to_post(row: Row) -> Post:
    return Post(row["message_id"], row["channel_id"], row["generation_id"], row["image_index"], row["kind"])


def to_delivery(row: Row) -> Delivery:
    return Delivery(row["generation_id"], row["channel_id"], row["status_message_id"], row["delivered_at"])


def to_project(row: Row) -> Project:
    return Project(
        row["id"], row["owner_id"], row["name"], row["thread_id"], row["created_at"], row["server"]
    )


def to_generation(row: Row) -> Generation:
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


def to_image(row: Row) -> ImageRecord:
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
