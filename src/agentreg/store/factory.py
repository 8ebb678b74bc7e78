"""Pick the store implementation from a database URL."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from agentreg.store.postgres import PostgresStore
from agentreg.store.sql import SqlStore
from agentreg.store.sqlite import SQLiteStore


def create_store(url: str) -> SqlStore:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return SQLiteStore(url)
    if backend == "postgresql":
        return PostgresStore(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://")
