"""What a discovery source is, and the sink it reports to.

A source runs until cancelled. It reports full snapshots (of one object kind, or of everything it owns)
and incremental changes to its ``Sink``, which applies them through the reconciler; it reports its own
condition (watching, a kind not installed, an API server unreachable) with ``Sink.status``. It retries and
reconnects on its own: an exception escaping ``run`` is recorded as the source's error and the runner starts
it again after a backoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from agentreg.domain.inventory import Claim, ObjectKey, Observation
from agentreg.domain.sources import SourceConfig


class Sink(Protocol):
    async def snapshot(
        self, observations: Sequence[Observation], *, group: str | None = None, kind: str | None = None
    ) -> None:
        """Everything the source sees now (of ``group``/``kind`` when given); what it owned and no longer
        sees becomes orphan."""

    async def changed(self, upserts: Sequence[Observation], deletes: Sequence[ObjectKey] = ()) -> None:
        """Objects added or modified, and objects gone."""

    async def enrich(self, key: ObjectKey, extra: Mapping[str, Any], claim: Claim | None = None) -> None:
        """Record something learned about one row later (a fetched card, introspected tools)."""

    def status(
        self,
        *,
        state: str | None = None,
        error: str | None = None,
        clear_error: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """The source's own condition; ``details`` keys are merged into what it reported before."""


class Source(Protocol):
    config: SourceConfig

    async def run(self, sink: Sink) -> None:
        """Discover until cancelled."""

    def resync(self) -> None:
        """Take a full snapshot again soon (``POST /v1/sources/{name}/sync``)."""
