"""Plain records the store returns and the use cases pass around."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from studio.recipe import Recipe

Status = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_STATUSES: frozenset[str] = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class Project:
    id: str
    owner_id: str
    name: str
    thread_id: str | None
    created_at: float


@dataclass(frozen=True)
class Generation:
    id: str
    project_id: str
    owner_id: str
    recipe: Recipe
    status: Status
    error: str | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    worker_seconds: float | None
    load_seconds: float | None
    grid_artifact: str | None
    private: bool = False

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Post:
    message_id: str
    channel_id: str
    generation_id: str
    image_index: int | None
    kind: str


@dataclass(frozen=True)
class BoardItem:
    id: str
    project_id: str
    artifact: str
    added_by: str


@dataclass(frozen=True)
class Ideation:
    message_id: str
    project_id: str
    owner_id: str
    concept: str
    seed: int


@dataclass(frozen=True)
class Delivery:
    generation_id: str
    channel_id: str
    status_message_id: str | None  # None: promised, not yet posted (e.g. the bot stopped in between)
    delivered_at: float | None


@dataclass(frozen=True)
class ImageRecord:
    id: str
    generation_id: str
    index: int
    artifact: str
    recipe: Recipe
    seed: int
    width: int
    height: int
    parent_image_id: str | None
    owner_id: str
    public: bool
    created_at: float
