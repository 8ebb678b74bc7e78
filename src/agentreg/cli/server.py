"""Server-side commands: serve, db and admin. The only CLI module that imports the server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

app_db = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app_admin = typer.Typer(
    help="Administration on the database directly (no running server).", no_args_is_help=True
)


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
    mode = (
        "authentication required (API keys"
        + (f", OIDC tokens from {settings.oidc_issuer}" if settings.oidc_issuer else "")
        + ")"
        if settings.auth_required
        else "SINGLE-USER MODE: no authentication, every caller is the default tenant's admin"
        " (set AGENTREG_AUTH=required to turn authentication on)"
    )
    typer.echo(f"agentreg listening on http://{settings.host}:{settings.port} ({database}; {mode})", err=True)
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


DatabaseUrlOption = Annotated[
    str | None, typer.Option(help="database URL [env AGENTREG_DATABASE_URL, default SQLite in the data dir]")
]


def _migrated(database_url: str | None) -> str:
    """The database URL (option, else settings), migrated to the head revision."""
    from agentreg.config import Settings
    from agentreg.store import migrate

    settings = Settings.from_env()
    url = database_url or settings.effective_database_url
    if url.startswith("sqlite") and not database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(migrate.upgrade(url))
    return url


@app_db.command("upgrade")
def upgrade(database_url: DatabaseUrlOption = None) -> None:
    """Apply every pending migration."""
    from agentreg.store import migrate

    _migrated(database_url)
    typer.echo(f"database at revision {migrate.head_revision()}")


@app_admin.command("bootstrap")
def bootstrap(
    database_url: DatabaseUrlOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="create another even if a super-admin key exists")
    ] = False,
) -> None:
    """Create the first super-admin API key and print it (shown only this once). Migrates first."""
    from agentreg.cli.output import error_line
    from agentreg.domain.errors import Conflict
    from agentreg.services import identity
    from agentreg.store.factory import create_store

    url = _migrated(database_url)

    async def run() -> identity.CreatedKey | None:
        store = create_store(url)
        await store.start()
        try:
            return await identity.bootstrap(store, force=force)
        finally:
            await store.close()

    try:
        created = asyncio.run(run())
    except Conflict as exc:
        error_line(exc.message)
        raise typer.Exit(1) from None
    if created is None:  # only with a given secret, which this command never passes
        raise typer.Exit(1)
    typer.echo(created.secret)
    typer.echo(
        f"created super-admin key {created.row.id}; the secret is shown only once: store it now", err=True
    )
