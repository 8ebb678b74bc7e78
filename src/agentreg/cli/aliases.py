"""agentreg alias set|rm|list."""

from __future__ import annotations

from typing import Annotated

import typer

from agentreg.cli.context import OutputOption, options
from agentreg.cli.output import Format, emit_data, table, when

app = typer.Typer(help="Move aliases (stable, canary, prod, ...) between versions.", no_args_is_help=True)
KindArg = Annotated[str, typer.Argument(help="agent, mcp-server, skill or model")]
NameArg = Annotated[str, typer.Argument(help="NAMESPACE/NAME")]


@app.command("set")
def set_alias(
    ctx: typer.Context,
    kind: KindArg,
    name: NameArg,
    alias: Annotated[str, typer.Argument(help="alias name, e.g. stable")],
    version: Annotated[str, typer.Argument(help="exact version to point at")],
    if_match: Annotated[
        str | None, typer.Option("--if-match", help="only if the alias points at this version now")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Point ALIAS at VERSION."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.set_alias(kind, name, alias, version, if_match=if_match)
    if opts.output != Format.table:
        emit_data(result, opts.output)
    else:
        table(
            ["ALIAS", "VERSION", "UPDATED", "BY"],
            [[result.alias, result.version, when(result.updatedAt), result.updatedBy]],
        )


@app.command("rm")
def remove_alias(
    ctx: typer.Context, kind: KindArg, name: NameArg, alias: Annotated[str, typer.Argument()]
) -> None:
    """Remove ALIAS."""
    with options(ctx).client() as client:
        client.delete_alias(kind, name, alias)


@app.command("list")
def list_aliases(ctx: typer.Context, kind: KindArg, name: NameArg, output: OutputOption = None) -> None:
    """List a resource's aliases."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.aliases(kind, name)
    if opts.output != Format.table:
        emit_data(result, opts.output)
    else:
        table(
            ["ALIAS", "VERSION", "UPDATED", "BY"],
            [[a.alias, a.version, when(a.updatedAt), a.updatedBy] for a in result.items],
        )
