"""Log output for operators: JSON lines (setting ``log_format = "json"``) and secret redaction.

Every record may carry the ids of what it is about (job, generation, guild, user): set for a
stretch of code with ``log_context`` (contextvars, so each job's task keeps its own) or passed as
``extra={"generation_id": ...}``. A filter on every handler masks anything that looks like a
Discord token, an Atelier API key or webhook secret, a bearer header or a Redis password, in
both formats, so a careless log line never ships a credential.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("job_id", "generation_id", "guild_id", "user_id")
_context: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(name, default=None) for name in CONTEXT_FIELDS
}

REDACTED = "[redacted]"
_SECRET_PATTERNS = (
    # Discord bot token: base64 user id . timestamp . HMAC
    re.compile(r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),
    re.compile(r"\b(?:atl|whsec)_[A-Za-z0-9_-]{16,}"),  # Atelier API keys and webhook secrets
    re.compile(r"(?i)\b(?:bearer|bot)\s+[A-Za-z0-9._~+/=-]{20,}"),  # Authorization header values
    re.compile(r"(?<=://)[^/@\s:]*:[^/@\s]+(?=@)"),  # user:password@ in a URL (Redis, Postgres)
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face tokens
)


@contextlib.contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """Attach ids (job_id, generation_id, guild_id, user_id) to every record logged inside."""
    tokens = []
    for name, value in ids.items():
        if name not in _context:
            raise ValueError(f"unknown log context field {name!r}")
        tokens.append((name, _context[name].set(None if value is None else str(value))))
    try:
        yield
    finally:
        for name, token in reversed(tokens):
            _context[name].reset(token)


def tag_logs(**ids: object) -> None:
    """Attach ids to every record logged from here to the end of the current task (each task
    starts from a copy of its creator's context, so nothing leaks into other work)."""
    for name, value in ids.items():
        if name not in _context:
            raise ValueError(f"unknown log context field {name!r}")
        _context[name].set(None if value is None else str(value))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and its traceback text) with secrets masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context ids, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or _context[name].get()
            if value is not None:
                entry[name] = str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, secrets: Iterable[str] = ()) -> None:
    """Apply the log format and the redaction filter to every handler of the root logger.

    Called once the settings are known (after logging.basicConfig); ``secrets`` are values to
    mask wherever they appear, e.g. the bot's own token.
    """
    root = logging.getLogger()
    redactor = RedactSecrets(secrets)
    for handler in root.handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactSecrets)]
        handler.addFilter(redactor)
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
