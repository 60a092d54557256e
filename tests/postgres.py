"""Throwaway PostgreSQL databases for tests: one per test, on the server the test command found.

``ATELIER_TEST_POSTGRES_URL`` names a database to connect to as an administrator (``./dev test``
sets it, starting a server where none answers); each test gets ``atelier_test_<random>`` on that
server, dropped afterwards, so runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ADMIN_URL = os.environ.get("ATELIER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped on exit."""
    name = f"atelier_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(ADMIN_URL, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"No PostgreSQL answers at ATELIER_TEST_POSTGRES_URL ({exc}); run the tests with ./dev test, "
            "which starts one where none answers."
        ) from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        admin = await asyncpg.connect(ADMIN_URL, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
