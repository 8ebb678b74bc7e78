"""Options shared by every client command (registry URL, output format)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from agentreg.cli.output import Format
from agentreg.client import Client


@dataclass
class Options:
    url: str | None = None
    output: Format = Format.table

    def client(self) -> Client:
        return Client(self.url)


OutputOption = Annotated[Format | None, typer.Option("-o", "--output", help="table, json or yaml")]


def options(ctx: typer.Context, output: Format | None = None) -> Options:
    """The global options, with a command's own ``-o`` taking precedence."""
    if not isinstance(ctx.obj, Options):
        ctx.obj = Options()
    if output is not None:
        ctx.obj.output = output
    return ctx.obj
