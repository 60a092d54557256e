"""Plain records the store returns and the use cases pass around."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from studio.recipe import Recipe

Status = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_STATUSES: frozenset[str] = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class Requester:
    """Who asks: a stable id ("cli:alice", "discord:1234") and a display name."""

    id: str
    name: str
    moderator: bool = False  # may cancel other people's jobs
    admin: bool = False  # may set the server's defaults
    server: str | None = None  # the community (Discord guild) asking, for its defaults
    roles: frozenset[str] = frozenset()  # the person's roles there (who may train is per role)
    operator: bool = False  # whoever runs the studio (its command line): sees and manages everything


@dataclass(frozen=True)
class Project:
    id: str
    owner_id: str
    name: str
    thread_id: str | None
    created_at: float
    server: str | None = None  # the guild of its thread (None: no server)


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
    server: str | None = None  # the guild it is shown in; its images belong to that community

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
    server: str | None = None  # its generation's guild (None: the command line, or older rows)

    def in_scope(self, requester: Requester) -> bool:
        """Made in the requester's server (both None counts: the unscoped command-line world).

        A jump link only opens for members of the server it points into, and one bot serves
        many servers, so community views show only what belongs to the viewer's server.
        """
        return requester.operator or self.server == requester.server

    def visible_to(self, requester: Requester) -> bool:
        """Its owner sees it anywhere; others only if it is public and of their server."""
        return self.owner_id == requester.id or (self.public and self.in_scope(requester))


TrainingStatus = Literal["queued", "running", "retrying", "done", "failed", "cancelled"]


@dataclass(frozen=True)
class Lora:
    """A LoRA training run; once ``done`` (and not deleted) it is a custom model people can use."""

    id: str
    owner_id: str
    project_id: str | None
    server: str | None
    name: str
    version: int
    trigger: str
    base_model: str
    family: str
    visibility: Literal["private", "server"]
    params_json: str
    image_count: int
    status: TrainingStatus
    attempts: int
    step: int
    loss: float | None
    error: str | None
    weights: str | None  # artifact digests
    kohya: str | None
    sample: str | None
    comparison: str | None
    size_bytes: int | None
    losses: tuple[float, ...]
    seconds: float | None
    channel_id: str | None
    message_id: str | None
    delivered_at: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    deleted_at: float | None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def usable(self) -> bool:
        return self.status == "done" and self.deleted_at is None

    @property
    def imported(self) -> bool:
        """Brought in as a file (`/models import`), not trained here: its params say how it was read."""
        return self.params_json.startswith('{"imported"')

    @property
    def label(self) -> str:
        return self.name if self.version == 1 else f"{self.name} v{self.version}"

    def visible_to(self, requester: Requester) -> bool:
        """Private models exist only for their owner; server models for that server's members."""
        if requester.operator or self.owner_id == requester.id:
            return True
        return (
            self.visibility == "server" and requester.server is not None and self.server == requester.server
        )


@dataclass(frozen=True)
class Finish:
    """An upscale, grade or export of an image, kept at full size (the API serves it whole)."""

    id: str
    owner_id: str
    kind: Literal["upscale", "grade", "export"]
    source_image: str | None
    source: str
    params_json: str
    artifact: str | None
    preview: str | None
    suffix: str
    method: str | None
    width: int | None
    height: int | None
    applied_at: float | None
    created_at: float


@dataclass(frozen=True)
class ApiKey:
    """A REST API bearer token's record; the token itself is never stored, only its sha256."""

    id: str
    owner_id: str
    owner_name: str
    server: str | None  # the guild it was minted in: the API acts as its owner there
    name: str
    prefix: str  # the token's first characters, to recognise it in /apikey list
    webhook_secret: str  # signs webhook bodies (HMAC-SHA256); shown once, kept to sign
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @property
    def requester(self) -> Requester:
        return Requester(id=self.owner_id, name=self.owner_name, server=self.server)


@dataclass(frozen=True)
class ApiGeneration:
    """A generation started through the API: its key, and the webhook to call when it ends."""

    generation_id: str
    key_id: str
    webhook_url: str | None
    webhook_status: Literal["none", "pending", "delivered", "failed"]
    webhook_attempts: int
    webhook_error: str | None
    created_at: float
