"""A directory of catalog envelopes (a git checkout) reconciled as one source (GitOps).

Every ``*.yaml``/``*.yml``/``*.json`` file under the directory is read as a stream of envelopes (``kind:
Agent|MCPServer|Skill|Model``, ``metadata``, ``spec``). Each envelope becomes one observation keyed by its
kind, namespace and ``name@version``, carrying the document in ``extra["document"]`` and an
``agentreg.dev/ref`` annotation naming the version it declares; the runner publishes what is not published
yet (as this source) before the snapshot is reconciled. The directory is fingerprinted (paths, sizes,
modification times) every ``interval``; a snapshot is taken when the fingerprint changes or on request.
A file that does not parse is reported on the source's status and skipped; the rest still apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentreg.domain.health import Health
from agentreg.domain.inventory import REF_ANNOTATION, ObjectKey, Observation
from agentreg.domain.kinds import Kind, parse_kind
from agentreg.domain.sources import SourceConfig
from agentreg.domain.streams import parse_stream
from agentreg.sources.base import Sink

GROUP = "agentreg.dev"
SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 4 * 1024 * 1024


def fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def read_directory(root: Path, cluster: str) -> tuple[list[Observation], dict[str, str]]:
    """The envelopes under ``root`` as observations, and the files that could not be read (path → why)."""
    observations: dict[ObjectKey, Observation] = {}
    errors: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file()):
        relative = str(path.relative_to(root))
        if path.stat().st_size > MAX_FILE_BYTES:
            errors[relative] = f"larger than {MAX_FILE_BYTES} bytes"
            continue
        media = "application/json" if path.suffix == ".json" else "application/yaml"
        try:
            items = parse_stream(path.read_bytes(), media)
        except Exception as exc:  # a malformed file is reported, never fatal
            errors[relative] = str(exc)
            continue
        for item in items:
            where = f"{relative}#{item.index}"
            if item.error is not None:
                errors[where] = item.error.message
                continue
            observation = _observation(item.value, cluster, where)
            if isinstance(observation, str):
                errors[where] = observation
            elif observation.key in observations:
                errors[where] = f"declares {observation.key.name} again"
            else:
                observations[observation.key] = observation
    return list(observations.values()), errors


def _observation(value: Any, cluster: str, where: str) -> Observation | str:
    if not isinstance(value, Mapping):
        return "not an envelope (a mapping with kind, metadata and spec)"
    metadata = value.get("metadata")
    if not isinstance(metadata, Mapping):
        return "metadata is missing"
    try:
        kind = parse_kind(str(value.get("kind", "")))
    except Exception as exc:
        return str(exc)
    namespace, name, version = metadata.get("namespace"), metadata.get("name"), metadata.get("version")
    if not all(isinstance(v, str) and v for v in (namespace, name, version)):
        return "metadata needs namespace, name and version"
    assert isinstance(namespace, str) and isinstance(name, str) and isinstance(version, str)
    return Observation(
        key=ObjectKey(cluster, GROUP, kind.envelope, namespace, f"{name}@{version}"),
        api_version=str(value.get("apiVersion", f"{GROUP}/v1")),
        catalog_kind=kind,
        title=str(metadata.get("title") or name),
        annotations={
            REF_ANNOTATION: f"{kind.value}/{namespace}/{name}@{version}",
            "agentreg.dev/file": where,
        },
        health=Health.PASSING,
        extra={"document": dict(value)},
    )


def document_of(observation: Observation) -> dict[str, Any] | None:
    document = observation.extra.get("document")
    return dict(document) if isinstance(document, Mapping) else None


def declared_kind(observation: Observation) -> Kind | None:
    return observation.catalog_kind


class ManifestSource:
    def __init__(self, config: SourceConfig) -> None:
        assert config.path is not None
        self.config = config
        self.root = Path(config.path)
        self._wake = asyncio.Event()

    def resync(self) -> None:
        self._wake.set()

    async def run(self, sink: Sink) -> None:
        seen: str | None = None
        while True:
            if not self.root.is_dir():
                sink.status(state="failed", error=f"{self.root} is not a directory")
            else:
                current = await asyncio.to_thread(fingerprint, self.root)
                if current != seen or self._wake.is_set():
                    observations, errors = await asyncio.to_thread(
                        read_directory, self.root, self.config.cluster
                    )
                    await sink.snapshot(observations)
                    seen = current
                    sink.status(
                        state="degraded" if errors else "ready",
                        error=f"{len(errors)} document(s) could not be read" if errors else None,
                        clear_error=not errors,
                        details={"files": errors, "documents": len(observations)},
                    )
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.interval_s)
