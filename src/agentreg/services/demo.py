"""``serve --demo``: publish the example documents and point a ``stable`` alias at each."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentreg.domain.kinds import Kind
from agentreg.domain.principals import ANONYMOUS
from agentreg.domain.streams import parse_stream
from agentreg.services.aliases import set_alias
from agentreg.services.publish import ApplyInput, apply
from agentreg.store.interface import Store


def _read_yaml_files(directory: Path) -> str:
    return "\n---\n".join(p.read_text("utf-8") for p in sorted(directory.glob("*.y*ml")))


async def load_examples(store: Store, directory: Path) -> None:
    text = await asyncio.to_thread(_read_yaml_files, directory)
    items = [ApplyInput(i.index, i.value, i.error) for i in parse_stream(text.encode(), "application/yaml")]
    for result in await apply(store, ANONYMOUS, items):
        if result.error is not None or result.kind is None or result.name is None or result.version is None:
            raise RuntimeError(f"example document {result.index} failed: {result.error}")
        namespace, _, name = result.name.partition("/")
        await set_alias(store, ANONYMOUS, Kind(result.kind), namespace, name, "stable", result.version)
