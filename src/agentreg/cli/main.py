"""The ``agentreg`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from agentreg import __version__
from agentreg.cli import aliases, catalog, server
from agentreg.cli.context import Options
from agentreg.cli.output import Format, error_line
from agentreg.client.errors import APIConnectionError, APIError
from agentreg.domain.errors import AgentRegError

app = typer.Typer(
    name="agentreg",
    help="Registry and live inventory for agents, MCP servers, skills and models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar="AGENTREG_URL", help="registry URL [default http://127.0.0.1:8080]"),
    ] = None,
    output: Annotated[Format, typer.Option("-o", "--output", help="table, json or yaml")] = Format.table,
) -> None:
    ctx.obj = Options(url=url, output=output)


@app.command("version")
def version() -> None:
    """Print the agentreg version."""
    typer.echo(__version__)


app.command("serve")(server.serve)
app.add_typer(server.app_db, name="db")
app.command("apply")(catalog.apply)
app.command("get")(catalog.get)
app.command("versions")(catalog.versions)
app.command("resolve")(catalog.resolve)
app.add_typer(aliases.app, name="alias")

EXIT_API_ERROR = 1
EXIT_UNREACHABLE = 3


def main() -> None:
    """Entry point: one line on stderr and a non-zero exit code for every failure."""
    try:
        app()
    except APIError as exc:
        details = "; ".join(f"{d.get('field')}: {d.get('issue')}" for d in exc.details[:5])
        error_line(
            f"{exc.message}"
            + (f" [{details}]" if details and details not in exc.message else "")
            + f" ({exc.code})"
        )
        raise SystemExit(EXIT_API_ERROR) from None
    except APIConnectionError as exc:
        error_line(str(exc))
        raise SystemExit(EXIT_UNREACHABLE) from None
    except (AgentRegError, ValueError) as exc:
        error_line(getattr(exc, "message", str(exc)))
        raise SystemExit(2) from None
