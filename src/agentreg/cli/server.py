"""Server-side commands: serve and db. The only CLI modules that import the server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

app_db = typer.Typer(help="Database maintenance.", no_args_is_help=True)


def serve(
    host: Annotated[
        str | None, typer.Option(help="bind address [env AGENTREG_HOST, default 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port [env AGENTREG_PORT, default 8080]")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="SQLite data directory [env AGENTREG_DATA_DIR, default ./.agentreg]")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="database URL, replaces SQLite [env AGENTREG_DATABASE_URL]")
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="load examples/ on start")] = False,
    log_level: Annotated[str, typer.Option(help="log level")] = "info",
) -> None:
    """Run the registry (migrates the database first)."""
    import uvicorn

    from agentreg import logs
    from agentreg.api.app import create_app
    from agentreg.config import Settings

    for env, value in (
        ("AGENTREG_HOST", host),
        ("AGENTREG_PORT", port),
        ("AGENTREG_DATA_DIR", data_dir),
        ("AGENTREG_DATABASE_URL", database_url),
    ):
        if value is not None:
            os.environ[env] = str(value)
    settings = Settings.from_env()
    logs.configure(log_level.upper())
    demo_dir = _examples_dir() if demo else None
    application = create_app(settings, demo_dir=demo_dir)
    database = (
        "PostgreSQL"
        if settings.database_url
        else f"SQLite at {settings.effective_database_url.split(':///', 1)[1]}"
    )
    typer.echo(
        f"agentreg listening on http://{settings.host}:{settings.port} ({database}; single-user mode, no authentication)",
        err=True,
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        log_level=log_level,
        lifespan="on",
    )


def _examples_dir() -> Path:
    for candidate in (Path.cwd() / "examples", Path(__file__).resolve().parents[3] / "examples"):
        if candidate.is_dir():
            return candidate
    raise typer.BadParameter(
        "no examples/ directory found (run from the repository root)", param_hint="--demo"
    )


@app_db.command("upgrade")
def upgrade(
    database_url: Annotated[str | None, typer.Option(help="database URL [env AGENTREG_DATABASE_URL]")] = None,
) -> None:
    """Apply every pending migration."""
    from agentreg.config import Settings
    from agentreg.store import migrate

    settings = Settings.from_env()
    url = database_url or settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(migrate.upgrade(url))
    typer.echo(f"database at revision {migrate.head_revision()}")
