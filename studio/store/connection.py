"""The database the store's queries share, SQLite or PostgreSQL, and how they use it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from studio.store.backend import Backend, Row, Transaction

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def new_id() -> str:
    return uuid.uuid4().hex


def is_postgres(target: Path | str) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def backend_for(target: Path | str) -> Backend:
    """A ``postgresql://`` URL, else a SQLite file (a path, or a ``sqlite:///path`` URL)."""
    if is_postgres(target):
        from studio.store.postgres_backend import PostgresBackend  # asyncpg only where it is used

        return PostgresBackend(str(target))
    from studio.store.sqlite_backend import SqliteBackend

    path = str(target)
    return SqliteBackend(Path(path.removeprefix("sqlite:///") if path.startswith("sqlite:///") else path))


class Connection:
    def __init__(self, target: Path | str) -> None:
        self.backend = backend_for(target)

    @property
    def dialect(self) -> str:
        return self.backend.dialect

    async def open(self) -> Self:
        await self.backend.open()
        return self

    async def close(self) -> None:
        await self.backend.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def answers(self, timeout: float = 2.0) -> bool:
        """Whether the database answers a trivial query in time (a readiness probe asks)."""
        try:
            await asyncio.wait_for(self.backend.fetch("SELECT 1 AS one", ()), timeout)
        except Exception:
            return False
        return True

    async def _write(self, sql: str, args: Iterable[Any] = ()) -> int:
        """One write statement; returns the rows it changed."""
        return await self.backend.execute(sql, args)

    async def _insert(self, table: str, row: dict[str, Any]) -> None:
        """One row from a dict whose keys are column names (always ours, never user input)."""
        columns, marks = ", ".join(row), ", ".join("?" for _ in row)
        await self._write(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row.values())  # noqa: S608

    def _transaction(self, lock: str | None = None) -> AbstractAsyncContextManager[Transaction]:
        """Statements that commit together; ``lock`` serialises transactions naming the same key."""
        return self.backend.transaction(lock)

    async def _one(self, sql: str, args: Iterable[Any] = ()) -> Row | None:
        rows = await self._all(sql, args)
        return rows[0] if rows else None

    async def _all(self, sql: str, args: Iterable[Any] = ()) -> Sequence[Row]:
        return await self.backend.fetch(sql, args)
