"""What the store needs from a database: statements, reads and locked transactions.

Two backends implement it: SQLite (``sqlite_backend``, the embedded default: one file, one
host) and PostgreSQL (``postgres_backend``, for a bot and API replicas on several hosts). The
queries are written once, in SQLite's spelling with ``?`` placeholders; the Postgres backend
translates the few spellings that differ (``postgres_dialect``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class Row(Protocol):
    """A result row: by column name or position (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def keys(self) -> Any: ...


class UniqueViolation(Exception):
    """A write broke a UNIQUE constraint (whichever database said so)."""


class Transaction(Protocol):
    """Statements that commit together, or not at all."""

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int: ...

    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> Sequence[Row]: ...


class Backend(Protocol):
    dialect: str  # "sqlite" or "postgres"

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        """One statement in its own transaction; returns the rows it changed."""
        ...

    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> Sequence[Row]: ...

    def transaction(self, lock: str | None = None) -> AbstractAsyncContextManager[Transaction]:
        """A transaction; with ``lock``, transactions holding the same key (in any process)
        run one at a time, so a count read inside one still holds when its insert lands."""
        ...
