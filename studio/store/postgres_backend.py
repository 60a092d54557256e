"""The store on PostgreSQL (asyncpg): the bot and several API replicas on different hosts.

A pool of connections: statements from different coroutines run side by side, each transaction
on a connection of its own. Where SQLite serialises every writer on the file, a transaction
that counts before it writes names a ``lock`` key (an advisory lock held until it commits).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from studio.store import postgres_dialect
from studio.store.backend import Row, Transaction, UniqueViolation
from studio.store.migrations import migrate_postgres

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


def _changed(status: str) -> int:
    """Rows a command changed, from its status tag ("UPDATE 3", "INSERT 0 1", "DELETE 0")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresTransaction:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        try:
            status = await self._connection.execute(postgres_dialect.query(sql), *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc
        return _changed(status)

    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> Sequence[Row]:
        rows: list[Row] = await self._connection.fetch(postgres_dialect.query(sql), *args)
        return rows


class PostgresBackend:
    dialect = "postgres"

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self._url = url  # holds the password, if any: never logged
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._pool_size)
        try:
            async with pool.acquire() as connection:
                await migrate_postgres(connection)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Store is not open")
        return self._pool

    async def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        async with self.pool.acquire() as connection:
            return await _PostgresTransaction(connection).execute(sql, args)

    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> Sequence[Row]:
        async with self.pool.acquire() as connection:
            return await _PostgresTransaction(connection).fetch(sql, args)

    @asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Transaction]:
        async with self.pool.acquire() as connection, connection.transaction():
            if lock is not None:
                await connection.execute(_LOCK, lock)
            yield _PostgresTransaction(connection)
