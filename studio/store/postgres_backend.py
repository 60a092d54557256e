"""The store on PostgreSQL (asyncpg): the bot and several API replicas on different hosts.

A pool of connections: statements from different coroutines run side by side, each transaction
on a connection of its own. Where SQLite serialises every writer on the file, a transaction
that counts before it writes names a ``lock`` key (an advisory lock held until it commits).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import asyncpg

from studio.errors import StoreUnavailable
from studio.store import postgres_dialect
from studio.store.backend import Row, Transaction, UniqueViolation
from studio.store.migrations import migrate_postgres

T = TypeVar("T")
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
# The database is away, not the query wrong: refused or cut connections (a restart, a failover, a
# database not accepting connections, the server at its connection limit). StoreUnavailable.
_AWAY: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out (TimeoutError is one)
    asyncpg.PostgresConnectionError,  # the connection is gone, or could not be made
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.ObjectNotInPrerequisiteStateError,  # the database is not accepting connections
    asyncpg.TooManyConnectionsError,
)


# A connection the server cut (a terminated backend) whose client side has not noticed yet: the
# next statement on it fails in the client. It is dropped, and a single statement tried once more.
_STALE: tuple[type[BaseException], ...] = (asyncpg.InterfaceError, asyncpg.InternalClientError)


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except _AWAY as error:
        raise StoreUnavailable(f"{type(error).__name__}: {error}") from error


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
        return await self._statement(lambda statement: statement.execute(sql, args))

    async def fetch(self, sql: str, args: Iterable[Any] = ()) -> Sequence[Row]:
        return await self._statement(lambda statement: statement.fetch(sql, args))

    async def _statement(self, run: Callable[[_PostgresTransaction], Awaitable[T]]) -> T:
        """One statement on a pooled connection; on a stale one (see _STALE), once more on another."""
        for last in (False, True):
            with _reachable():
                async with self.pool.acquire() as connection:
                    try:
                        return await run(_PostgresTransaction(connection))
                    except _STALE as error:
                        connection.terminate()
                        if last:
                            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Transaction]:
        with _reachable():
            async with self.pool.acquire() as connection:
                try:
                    async with connection.transaction():
                        if lock is not None:
                            await connection.execute(_LOCK, lock)
                        yield _PostgresTransaction(connection)
                except _STALE as error:  # the caller's statements may not run twice: it tries again
                    connection.terminate()
                    raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
