"""Rendering for the CLI: Rich tables for people, JSON or YAML for scripts (``-o``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def emit_data(value: Any, fmt: Format) -> None:
    data = plain(value)
    if fmt == Format.yaml:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None, *, stderr: bool = False
) -> None:
    grid = Table(title=title, show_edge=False, header_style="bold")
    for i, column in enumerate(columns):
        # Names must stay copy-pasteable: never wrap the first column.
        grid.add_column(column, no_wrap=i == 0, overflow="fold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    Console(stderr=stderr).print(grid)  # created per call so COLUMNS and redirection are read when printing


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def short_digest(digest: str | None) -> str:
    return digest[:19] if digest else ""


def error_line(message: str) -> None:
    # The server's message may hold "[...]" (JSON pointers in details): never read it as Rich markup.
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
