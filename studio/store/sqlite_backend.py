"""The embedded store: one SQLite file (aiosqlite, WAL), shared by the processes of one host."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from studio.store.backend import Row, Transaction, UniqueViolation
from studio.store.migrations import migrate_sqlite


class _SqliteTransaction:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        with _unique_violation():
            cursor = await self._db.execute(sql, tuple(args))
        return cursor.rowcount

    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> Sequence[Row]:
        return list(await self._db.execute_fetchall(sql, tuple(args)))


@contextmanager
def _unique_violation() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if str(exc).startswith("UNIQUE"):
            raise UniqueViolation(str(exc)) from exc
        raise


class SqliteBackend:
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        # All statements share one connection, so writes take turns with transactions: a
        # statement from another coroutine must never land inside (or be rolled back with)
        # someone's transaction.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)  # explicit transactions
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        await migrate_sqlite(db)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("Store is not open")
        return self._db

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        async with self._lock:
            return await _SqliteTransaction(self.db).execute(sql, args)

    # Reads run and finish in one call on the connection's thread: a SELECT left open across an
    # await holds a read snapshot, and a write from another coroutine then cannot take the write
    # lock once another process (API, CLI) has written: SQLite answers "database is locked" at
    # once instead of waiting.
    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> Sequence[Row]:
        return await _SqliteTransaction(self.db).fetch(sql, args)

    @asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Transaction]:
        # BEGIN IMMEDIATE takes the file's write lock before the first read: every writer, in
        # every process, waits for it, which is stronger than any ``lock`` key asks.
        del lock
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(self.db)
                await self.db.execute("COMMIT")  # a failed commit is rolled back too: never left open
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
