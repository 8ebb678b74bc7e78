"""Settings from the environment (``AGENTREG_*``), shared by ``agentreg serve`` and the app factory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("./.agentreg"))
    database_url: str | None = None
    fast_lane: bool = True
    cache_entries: int = 10_000
    cache_bytes: int = 256 * 1024 * 1024

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        return cls(
            host=env.get("AGENTREG_HOST", "127.0.0.1"),
            port=int(env.get("AGENTREG_PORT", "8080")),
            data_dir=Path(env.get("AGENTREG_DATA_DIR", "./.agentreg")),
            database_url=env.get("AGENTREG_DATABASE_URL") or None,
            fast_lane=env.get("AGENTREG_FAST_LANE", "true").lower() not in ("0", "false", "no"),
            cache_entries=int(env.get("AGENTREG_CACHE_ENTRIES", "10000")),
            cache_bytes=int(env.get("AGENTREG_CACHE_BYTES", str(256 * 1024 * 1024))),
        )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'agentreg.db').resolve()}"
