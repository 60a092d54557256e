"""The StudioError hierarchy: every error a user can cause, with a sentence fit to show them."""

from __future__ import annotations


class StudioError(Exception):
    """Base of every expected, user-facing failure. ``str(err)`` is a complete, polite sentence."""


class InvalidRecipe(StudioError):
    """A recipe value is out of bounds or malformed; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownFlag(InvalidRecipe):
    def __init__(self, flag: str, known: list[str]) -> None:
        super().__init__(flag, f"Unknown flag `{flag}`. Known flags: {', '.join(known)}.")
        self.flag = flag


class UnknownModel(StudioError):
    def __init__(self, model_id: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none configured"
        super().__init__(f"Unknown model `{model_id}`. Available models: {listed}.")
        self.model_id = model_id


class CatalogueError(StudioError):
    """config/models.toml (or another catalogue file) is missing, malformed or points nowhere."""

    def __init__(
        self, path: str, message: str, entry: str | None = None, field: str | None = None, kind: str = "model"
    ) -> None:
        where = path
        if entry is not None:
            where += f": {kind} `{entry}`"
            if field is not None:
                where += f", field `{field}`"
        super().__init__(f"{where}: {message}")
        self.entry = entry
        self.field = field


class ConfigError(StudioError):
    """The settings (environment or config/atelier.toml) are invalid."""


class NotFound(StudioError):
    pass


class NotYours(StudioError):
    """Somebody tried to act on another person's work."""


class AlreadyFinished(StudioError):
    pass


class TooManyJobs(StudioError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} jobs queued or running; wait for one to finish (or cancel one)."
        )
        self.limit = limit


class BoardFull(StudioError):
    def __init__(self, limit: int, holding: int) -> None:
        super().__init__(
            f"A mood board holds at most {limit} images and this one has {holding}; remove some first."
        )


class QueueUnavailable(StudioError):
    """Redis cannot be reached; nothing was enqueued."""


class StoreUnavailable(StudioError):
    """The database cannot be reached (PostgreSQL restarting, refusing connections, or the
    connection cut): a request is answered "try again", a follower waits for it to come back."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("The studio's database can't be reached right now; please try again in a moment.")
        self.detail = detail  # the driver's words, for the log


class GenerationFailed(StudioError):
    def __init__(self, generation_id: str, reason: str) -> None:
        super().__init__(f"Generation {generation_id} failed: {reason}")
        self.generation_id = generation_id
        self.reason = reason


class GenerationCancelled(StudioError):
    def __init__(self, generation_id: str) -> None:
        super().__init__(f"Generation {generation_id} was cancelled.")
        self.generation_id = generation_id


class NameTaken(StudioError):
    def __init__(self, name: str) -> None:
        super().__init__(f"The name `{name}` is already taken; choose another one.")
        self.name = name


class DatasetRejected(StudioError):
    """A training dataset failed its checks; nothing was queued."""


class QuotaExceeded(StudioError):
    pass


class UnknownLora(StudioError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown LoRA `{name}`. `/models list` shows the ones you can use.")
        self.name = name


class WorkerUnavailable(StudioError):
    """No worker answered in time (none running, or all busy); nothing the user sent was wrong."""


class LoraRejected(StudioError):
    """The file cannot become a custom model; ``str()`` is the one sentence the person sees."""
