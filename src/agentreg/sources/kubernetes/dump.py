"""A cluster dump as a source: a directory of dumped objects (YAML or JSON files, single objects or ``List``s).

For ``serve --demo`` and air-gapped users (``kubectl get ... -o yaml > dump/x.yaml``): every file is read, each
object of a mapped kind becomes an observation exactly as a live cluster's would (Services resolve workload
endpoints), and the whole set is one snapshot. The directory is checked every ``interval_s`` and read again
when a file changed, appeared or went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from agentreg.domain.inventory import Observation
from agentreg.domain.sources import SourceConfig
from agentreg.sources.base import Sink
from agentreg.sources.kubernetes.kinds import (
    SERVICES,
    Services,
    label_matcher,
    selected,
    service_view,
    spec_for,
)

SUFFIXES = (".yaml", ".yml", ".json")


def _documents(path: Path) -> Iterator[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        yield json.loads(text)
    else:
        yield from yaml.safe_load_all(text)


def _objects(document: Any) -> Iterator[Mapping[str, Any]]:
    """A document's objects: itself, or the items of a ``List``/``*List``."""
    if not isinstance(document, Mapping):
        return
    kind = str(document.get("kind", ""))
    if kind.endswith("List") and isinstance(document.get("items"), list):
        for item in document["items"]:
            if isinstance(item, Mapping):
                if "kind" not in item and kind != "List":  # a typed list's items may omit their kind
                    item = {
                        **item,
                        "kind": kind.removesuffix("List"),
                        "apiVersion": document.get("apiVersion"),
                    }
                yield item
        return
    yield document


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES)


def fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    found = []
    for path in files(root):
        with contextlib.suppress(OSError):
            stat = path.stat()
            found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def _fingerprint_if_dir(root: Path) -> tuple[tuple[str, int, int], ...] | None:
    return fingerprint(root) if root.is_dir() else None


def read_dump(config: SourceConfig) -> tuple[list[Observation], list[str]]:
    """Every observation in the dump (namespaces and label selector honoured), and the problems met."""
    root = Path(config.path or ".")
    kinds = set(selected(config.kinds))
    wanted_labels = label_matcher(config.label_selector)
    namespaces = set(config.namespaces)
    raw: list[Mapping[str, Any]] = []
    problems: list[str] = []
    services: dict[str, dict[str, Mapping[str, Any]]] = {}
    for path in files(root):
        try:
            documents = list(_documents(path))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            problems.append(f"{path.name}: {exc}"[:300])
            continue
        for document in documents:
            for item in _objects(document):
                found_meta = item.get("metadata")
                meta: Mapping[str, Any] = found_meta if isinstance(found_meta, Mapping) else {}
                namespace = str(meta.get("namespace") or "")
                if namespaces and namespace not in namespaces:
                    continue
                if spec_for(str(item.get("apiVersion", "")), str(item.get("kind", ""))) is SERVICES:
                    services.setdefault(namespace, {})[str(meta.get("name"))] = service_view(item)
                else:
                    raw.append(item)
    view = Services(services)
    observations: dict[Any, Observation] = {}
    for item in raw:
        spec = spec_for(str(item.get("apiVersion", "")), str(item.get("kind", "")))
        if spec is None or spec not in kinds:
            continue
        labels = item.get("metadata", {}).get("labels") or {}
        if not wanted_labels(labels if isinstance(labels, Mapping) else {}):
            continue
        found = spec.map(item, config.cluster, view)
        if found is not None:
            observations[found.key] = found
    return list(observations.values()), problems


class DumpSource:
    """Reads the dump at ``config.path`` and reports it as one snapshot, again whenever it changes."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self._wake = asyncio.Event()

    def resync(self) -> None:
        self._wake.set()

    async def run(self, sink: Sink) -> None:
        root = Path(self.config.path or ".")
        seen: tuple[tuple[str, int, int], ...] | None = None
        while True:
            forced = self._wake.is_set()
            self._wake.clear()
            current = await asyncio.to_thread(_fingerprint_if_dir, root)
            if current is None:
                sink.status(state="failed", error=f"{root} is not a directory")
            elif forced or current != seen:
                observations, problems = await asyncio.to_thread(read_dump, self.config)
                await sink.snapshot(observations)
                seen = current
                sink.status(
                    state="ready",
                    error="; ".join(problems)[:500] if problems else None,
                    clear_error=not problems,
                    details={"objects": len(observations), "files": len(current)},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.interval_s)
