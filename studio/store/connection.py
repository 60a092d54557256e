"""The SQLite connection the store's queries share (aiosqlite, WAL), and how they use it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from studio.store.migrations import migrate


def new_id() -> str:
    return uuid.uuid4().hex


class Connection:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)  # explicit transactions
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        await migrate(db)
        self._db = db
        return self

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("Store is not open")
        return self._db

    async def _write(self, sql: str, args: Iterable[Any] = ()) -> int:
        """One write statement; returns the rows it changed.

        All writes share one connection, so they take turns with the transactions: a statement
        from another coroutine must never land inside (or be rolled back with) someone's
        transaction.
        """
        async with self._lock:
            cursor = await self.db.execute(sql, tuple(args))
            return cursor.rowcount

    async def _insert(self, table: str, row: dict[str, Any]) -> None:
        """One row from a dict whose keys are column names (always ours, never user input)."""
        columns, marks = ", ".join(row), ", ".join("?" for _ in row)
        await self._write(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row.values())  # noqa: S608

    # Reads run and finish in one call on the connection's thread: a SELECT left open across an
    # await holds a read snapshot, and a write from another coroutine then cannot take the write
    # lock once another process (API, CLI) has written: SQLite answers "database is locked" at
    # once instead of waiting.

    async def _one(self, sql: str, args: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self._all(sql, args)
        return rows[0] if rows else None

    async def _all(self, sql: str, args: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self.db.execute_fetchall(sql, tuple(args)))
