"""Options shared by every client command (registry URL, credentials, output format)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from agentreg.cli import credentials
from agentreg.cli.output import Format
from agentreg.client import Client
from agentreg.client._core import default_base_url


@dataclass
class Options:
    url: str | None = None
    output: Format = Format.table
    api_key: str | None = None
    token: str | None = None

    @property
    def base_url(self) -> str:
        return (self.url or default_base_url()).rstrip("/")

    def credential(self) -> tuple[str | None, str | None]:
        """(api_key, token): from --api-key/--token or their variables, else what ``agentreg login`` stored."""
        if self.api_key or self.token:
            return self.api_key, self.token
        stored = credentials.load(self.base_url)
        if stored is None:
            return None, None
        return (stored.secret, None) if stored.kind == "api_key" else (None, stored.secret)

    def client(self) -> Client:
        return self.client_with(*self.credential())

    def client_with(self, api_key: str | None, token: str | None) -> Client:
        # Empty strings, not None: the SDK would otherwise fall back to $AGENTREG_API_KEY / $AGENTREG_TOKEN,
        # which the options above have already read (and possibly overridden).
        return Client(self.url, api_key=api_key or "", token=token or "")


OutputOption = Annotated[Format | None, typer.Option("-o", "--output", help="table, json or yaml")]


def options(ctx: typer.Context, output: Format | None = None) -> Options:
    """The global options, with a command's own ``-o`` taking precedence."""
    if not isinstance(ctx.obj, Options):
        ctx.obj = Options()
    if output is not None:
        ctx.obj.output = output
    return ctx.obj
