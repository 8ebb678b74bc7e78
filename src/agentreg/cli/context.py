"""Options shared by every client command (registry URL, output format)."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from agentreg.cli.output import Format
from agentreg.client import Client


@dataclass
class Options:
    url: str | None = None
    output: Format = Format.table

    def client(self) -> Client:
        return Client(self.url)


def options(ctx: typer.Context) -> Options:
    if not isinstance(ctx.obj, Options):
        ctx.obj = Options()
    return ctx.obj
