"""What discovery sees: observations of running objects, and how one links to a published version.

A source turns what it finds (a Kubernetes object, a fetched agent card) into an ``Observation``. The
reconciler stores it as an inventory row: not a version, with no lifecycle, owned by the source that
emitted it. A row is *linked* to a published ``kind/namespace/name@version`` by the annotation
``agentreg.dev/ref`` or by what the runtime itself claims to run (an A2A card's name and version).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from agentreg.domain.errors import Invalid
from agentreg.domain.health import Health
from agentreg.domain.kinds import Kind
from agentreg.domain.names import Ref, SelectorType, parse_ref

REF_ANNOTATION = "agentreg.dev/ref"
KIND_ANNOTATION = "agentreg.dev/kind"
MAX_OBSERVED_BYTES = 256 * 1024  # a row's observed spec and status, serialized (larger is trimmed)


@dataclass(frozen=True, slots=True, order=True)
class ObjectKey:
    """A runtime object's identity within a tenant: where it runs and the runtime's own name for it.

    ``group`` is the API group without its version (``kagent.dev``; ``""`` for core and ``apps`` kinds keep
    theirs), so an object keeps its row when its CRD moves from v1alpha1 to v1alpha2.
    """

    cluster: str
    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        group = f"{self.group}/" if self.group else ""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.cluster}:{group}{self.kind}/{where}{self.name}"


@dataclass(frozen=True, slots=True)
class Condition:
    """A Kubernetes-style condition (``CardSynced``, ``SignatureVerified``, ``IdentityBound``, ``Ready``)."""

    type: str
    status: str  # True | False | Unknown
    reason: str
    message: str = ""
    last_transition_time: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        at = self.last_transition_time
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": at.isoformat().replace("+00:00", "Z") if at else None,
        }


def merge_conditions(
    old: Sequence[Condition], new: Sequence[Condition], now: datetime
) -> tuple[Condition, ...]:
    """``new`` conditions, keeping each one's last transition time while its status stays the same."""
    before = {c.type: c for c in old}
    merged: list[Condition] = []
    for condition in new:
        previous = before.get(condition.type)
        if previous is not None and previous.status == condition.status:
            at = previous.last_transition_time
        else:
            at = condition.last_transition_time or now
        merged.append(Condition(condition.type, condition.status, condition.reason, condition.message, at))
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class Claim:
    """What the runtime says it runs (an A2A card's name and version): matched against the catalog when
    there is no ``agentreg.dev/ref`` annotation. ``name`` is ``namespace/name`` or a bare name."""

    name: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """One object as a source last saw it."""

    key: ObjectKey
    api_version: str
    uid: str = ""
    catalog_kind: Kind | None = None  # what it is in the catalog's terms, when it is one of ours
    title: str = ""
    spec: Mapping[str, Any] = field(default_factory=dict)
    status: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    health: Health = Health.UNKNOWN
    health_reason: str = ""
    endpoint: str | None = None  # where it answers (an A2A base URL, an MCP endpoint), when known
    claim: Claim | None = None
    revision: str = ""  # changes on a rollout (generation, pod template hash): triggers a card re-fetch
    extra: Mapping[str, Any] = field(default_factory=dict)  # card, identity, tools: enrichments

    @property
    def declared_ref(self) -> str | None:
        return self.annotations.get(REF_ANNOTATION) or None

    def digest(self) -> str:
        """A hash of everything observed, so an unchanged object costs no write."""
        return observed_digest(self.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "uid": self.uid,
            "kind": self.catalog_kind.value if self.catalog_kind else None,
            "title": self.title,
            "spec": self.spec,
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "health": self.health.value,
            "healthReason": self.health_reason,
            "endpoint": self.endpoint,
            "claim": {"name": self.claim.name, "version": self.claim.version} if self.claim else None,
            "revision": self.revision,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }


def observed_digest(observed: Mapping[str, Any]) -> str:
    """``Observation.digest`` of an observation already turned into JSON (``Observation.to_json``)."""
    return hashlib.sha256(json.dumps(observed, sort_keys=True, default=str).encode()).hexdigest()


class LinkState(StrEnum):
    LINKED = "linked"  # runs a published version its environment admits
    DRIFT = "drift"  # runs a version never published, or one its environment does not admit
    UNREGISTERED = "unregistered"  # nothing links it to the catalog: a shadow agent
    NONE = "none"  # not a catalog kind (a ModelProviderConfig, an InferencePool): nothing to link


@dataclass(frozen=True, slots=True)
class Link:
    state: LinkState
    ref: str | None = None  # kind/namespace/name@version it runs, when known
    via: str | None = None  # annotation | claim
    reason: str = ""
    resource_id: int | None = None
    version_id: int | None = None


def parse_declared_ref(text: str, kind: Kind | None) -> Ref:
    """The ``agentreg.dev/ref`` annotation: ``[kind/]namespace/name@version``, an exact version."""
    ref = parse_ref(text, f"/metadata/annotations/{REF_ANNOTATION}", default_kind=kind)
    if ref.selector.type not in (SelectorType.EXACT, SelectorType.LITERAL) or "@" not in text:
        raise Invalid.at(
            f"/metadata/annotations/{REF_ANNOTATION}",
            f"{text!r} must name one exact version, like 'com.acme/support@1.2.0'",
        )
    return ref


def trim(value: Mapping[str, Any], limit: int = MAX_OBSERVED_BYTES) -> dict[str, Any]:
    """``value`` if it serializes within ``limit`` bytes; otherwise its keys with small values kept and a
    note of what was dropped (a ConfigMap-sized status must not bloat every read)."""
    text = json.dumps(value, default=str)
    if len(text) <= limit:
        return dict(value)
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    budget = limit
    for key, item in value.items():
        size = len(json.dumps(item, default=str))
        if size <= budget // 4:
            kept[key] = item
            budget -= size
        else:
            dropped.append(key)
    kept["agentreg.dev/trimmed"] = sorted(dropped)
    return kept


def observed_labels(raw: Any) -> dict[str, str]:
    """Labels or annotations from a raw object, strings only."""
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): str(v) for k, v in raw.items() if isinstance(v, str | int | float | bool)}
