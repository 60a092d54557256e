"""Versioned schema migrations: migrations/NNN_name.sql, applied in order, once, on either database.

One set of scripts for both: SQLite tracks the version in ``PRAGMA user_version``; Postgres in a
``schema_version`` table, with the scripts' types widened (``postgres_dialect.schema``).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING

from studio.store import postgres_dialect

if TYPE_CHECKING:
    import aiosqlite
    import asyncpg

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def available() -> list[tuple[int, str]]:
    folder = resources.files("studio.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match[1]), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate_sqlite(db: aiosqlite.Connection) -> int:
    """Apply the migrations newer than the database; returns the resulting version."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    for version, sql in available():
        if version <= current:
            continue
        # executescript commits first; the version bump is part of the same script.
        await db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
        current = version
    return current


async def migrate_postgres(connection: asyncpg.Connection) -> int:
    """The same, in one transaction (Postgres' DDL is transactional); processes starting at
    once take turns on an advisory lock, so each script runs exactly once."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended('atelier schema', 0))")
        await connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        current = int(await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
        for version, sql in available():
            if version <= current:
                continue
            await connection.execute(postgres_dialect.schema(sql))  # no arguments: several statements
            await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
            current = version
    return current
