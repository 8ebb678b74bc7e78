"""Discovery source configuration: the ``AGENTREG_SOURCES`` file and ``POST /v1/sources`` share this shape.

```yaml
sources:
  - name: prod-eu            # stable, unique
    type: kubernetes         # kubernetes | manifests
    tenant: default
    kubeconfig: ./kubeconfig # or inCluster: true, or path: a directory of dumped objects
    context: prod-eu
    cluster: prod-eu
    environment: prod
    namespaces: []           # empty: all
    allowCIDRs: []           # private ranges its card fetches may reach
    cardDiscovery: true
  - {name: catalog, type: manifests, tenant: default, path: ./catalog}
```

Every problem is reported with the field at fault (``/sources/0/kubeconfig``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agentreg.domain.errors import FieldIssue, Invalid
from agentreg.domain.names import ENVIRONMENT_RE, TENANT_RE

SOURCE_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class SourceType(StrEnum):
    KUBERNETES = "kubernetes"
    MANIFESTS = "manifests"


@dataclass(frozen=True, slots=True)
class IdentityBinding:
    """Which SPIFFE trust domain an agent's mTLS peer must present; ``strict`` makes a mismatch deny it."""

    trust_domain: str
    strict: bool = False


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    type: SourceType
    tenant: str = "default"
    # kubernetes
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    path: str | None = (
        None  # kubernetes: a directory of dumped objects; manifests: the directory of envelopes
    )
    cluster: str = ""
    environment: str | None = None
    namespaces: tuple[str, ...] = ()
    label_selector: str | None = None
    kinds: tuple[str, ...] = ()  # Kind or group/Kind names to watch; empty: every kind we map
    allow_cidrs: tuple[str, ...] = ()
    card_discovery: bool = True
    card_interval_s: float = 600.0
    introspect_tools: bool = False
    introspect_namespaces: tuple[str, ...] = ()  # empty with introspect_tools: every namespace
    orphan_grace_s: float = 600.0
    resync_s: float = 0.0  # a full re-list this often (0: only on watch expiry and on request)
    interval_s: float = 5.0  # manifests: how often the directory is checked for changes
    client_cert: str | None = None  # mTLS client certificate and key for card fetches (PEM files)
    client_key: str | None = None
    ca_file: str | None = None  # CA bundle for the agents' server certificates
    trust_anchors: tuple[str, ...] = ()  # JWKS files whose keys may sign agent cards
    trusted_jwks: tuple[str, ...] = ()  # JWKS URLs allow-listed for card signatures
    identity: IdentityBinding | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)  # as configured, for display and round trips

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)


_BOOL = {"inCluster", "cardDiscovery", "introspectTools"}
_STR = {"name", "type", "tenant", "kubeconfig", "context", "path", "cluster", "environment", "labelSelector"}
_STR |= {"clientCert", "clientKey", "caFile"}
_LISTS = {"namespaces", "kinds", "allowCIDRs", "introspectNamespaces", "trustAnchors", "trustedJwks"}
_DURATIONS = {"cardInterval", "orphanGrace", "resync", "interval"}
KNOWN_FIELDS = _BOOL | _STR | _LISTS | _DURATIONS | {"identity"}


def parse_duration(value: Any, at: str) -> float:
    """``30s``, ``10m``, ``1h30m``, ``500ms`` or a number of seconds."""
    if isinstance(value, bool):
        raise Invalid.at(at, "must be a duration like '30s' or '10m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value and _DURATION_RE.sub("", value) == "":
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_RE.findall(value))
    else:
        raise Invalid.at(at, f"{value!r} is not a duration like '30s', '10m' or '1h'")
    if seconds < 0:
        raise Invalid.at(at, "must not be negative")
    return seconds


def parse_sources(raw: Any) -> list[SourceConfig]:
    """The whole file: ``{sources: [...]}``; names are unique."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("sources", []), list):
        raise Invalid.at("/sources", "the file must be a mapping with a 'sources' list")
    problems: list[FieldIssue] = []
    configs: list[SourceConfig] = []
    seen: set[str] = set()
    for index, item in enumerate(raw.get("sources") or []):
        try:
            config = parse_source(item, f"/sources/{index}")
        except Invalid as exc:
            problems.extend(exc.details)
            continue
        if config.name in seen:
            problems.append(FieldIssue(f"/sources/{index}/name", f"{config.name!r} is used twice"))
        seen.add(config.name)
        configs.append(config)
    if problems:
        raise Invalid.of(problems)
    return configs


def parse_source(raw: Any, at: str = "") -> SourceConfig:
    if not isinstance(raw, Mapping):
        raise Invalid.at(at or "/", "a source must be a mapping")
    problems: list[FieldIssue] = []

    def issue(name: str, text: str) -> None:
        problems.append(FieldIssue(f"{at}/{name}", text))

    for key in raw:
        if key not in KNOWN_FIELDS:
            issue(str(key), "unknown field")
    values: dict[str, Any] = {}
    for key in _STR:
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            issue(key, "must be a non-empty string")
        elif value is not None:
            values[key] = value
    for key in _BOOL:
        value = raw.get(key)
        if value is not None and not isinstance(value, bool):
            issue(key, "must be true or false")
    for key in _LISTS:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            issue(key, "must be a list of non-empty strings")
    durations: dict[str, float] = {}
    for key in _DURATIONS:
        if raw.get(key) is not None:
            try:
                durations[key] = parse_duration(raw[key], f"{at}/{key}")
            except Invalid as exc:
                problems.extend(exc.details)
    name = values.get("name")
    if name is None:
        issue("name", "is required")
    elif not SOURCE_NAME_RE.fullmatch(name):
        issue("name", "must be a DNS label: lowercase letters, digits and '-', at most 63")
    try:
        kind = SourceType(values.get("type", ""))
    except ValueError:
        issue("type", f"must be one of {', '.join(t.value for t in SourceType)}")
        kind = None
    tenant = values.get("tenant", "default")
    if not TENANT_RE.fullmatch(tenant):
        issue("tenant", "is not a tenant id")
    environment = values.get("environment")
    if environment is not None and not ENVIRONMENT_RE.fullmatch(environment):
        issue("environment", "must be a DNS label like 'prod'")
    for index, cidr in enumerate(raw.get("allowCIDRs") or []):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (ValueError, TypeError):
            issue(f"allowCIDRs/{index}", f"{cidr!r} is not a CIDR like 10.0.0.0/8")
    identity = _identity(raw.get("identity"), f"{at}/identity", problems)
    if kind is SourceType.KUBERNETES:
        places = [k for k in ("kubeconfig", "path") if k in values] + (
            ["inCluster"] if raw.get("inCluster") else []
        )
        if len(places) != 1:
            issue(
                "kubeconfig", "a kubernetes source needs exactly one of kubeconfig, inCluster: true or path"
            )
    if kind is SourceType.MANIFESTS and "path" not in values:
        issue("path", "a manifests source needs the directory's path")
    if bool(values.get("clientCert")) != bool(values.get("clientKey")):
        issue("clientKey", "clientCert and clientKey go together")
    if problems:
        raise Invalid.of(problems)
    assert name is not None and kind is not None
    return SourceConfig(
        name=name,
        type=kind,
        tenant=tenant,
        kubeconfig=values.get("kubeconfig"),
        context=values.get("context"),
        in_cluster=bool(raw.get("inCluster", False)),
        path=values.get("path"),
        cluster=values.get("cluster", name),
        environment=environment,
        namespaces=_strings(raw.get("namespaces")),
        label_selector=values.get("labelSelector"),
        kinds=_strings(raw.get("kinds")),
        allow_cidrs=_strings(raw.get("allowCIDRs")),
        card_discovery=bool(raw.get("cardDiscovery", True)),
        card_interval_s=durations.get("cardInterval", 600.0),
        introspect_tools=bool(raw.get("introspectTools", False)),
        introspect_namespaces=_strings(raw.get("introspectNamespaces")),
        orphan_grace_s=durations.get("orphanGrace", 600.0),
        resync_s=durations.get("resync", 0.0),
        interval_s=max(durations.get("interval", 5.0), 0.1),
        client_cert=values.get("clientCert"),
        client_key=values.get("clientKey"),
        ca_file=values.get("caFile"),
        trust_anchors=_strings(raw.get("trustAnchors")),
        trusted_jwks=_strings(raw.get("trustedJwks")),
        identity=identity,
        raw=dict(raw),
    )


FILE_FIELDS = ("kubeconfig", "path", "clientCert", "clientKey", "caFile")


def files_under(config: SourceConfig, root: str | None) -> SourceConfig:
    """``config`` with its server file paths made absolute under ``root``; refuses any outside it (every path
    when ``root`` is None): a source configured by API must not make the registry read files the operator
    did not set aside for sources."""
    problems: list[FieldIssue] = []
    raw = dict(config.raw)

    def place(at: str, value: str) -> str:
        if root is None:
            problems.append(FieldIssue(at, "server file paths are only allowed in the AGENTREG_SOURCES file"))
            return value
        base = os.path.realpath(root)
        resolved = os.path.realpath(os.path.join(base, value))
        if os.path.commonpath([resolved, base]) != base:
            problems.append(FieldIssue(at, f"must be a path under {root} (AGENTREG_SOURCES_ROOT)"))
        return resolved

    for key in FILE_FIELDS:
        if isinstance(raw.get(key), str):
            raw[key] = place(f"/{key}", raw[key])
    anchors = raw.get("trustAnchors")
    if isinstance(anchors, list):
        raw["trustAnchors"] = [place(f"/trustAnchors/{i}", a) for i, a in enumerate(anchors)]
    if problems:
        raise Invalid.of(problems)
    return parse_source(raw)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else ()


def _identity(raw: Any, at: str, problems: list[FieldIssue]) -> IdentityBinding | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("trustDomain"), str) or not raw["trustDomain"]:
        problems.append(FieldIssue(f"{at}/trustDomain", "identity needs a trustDomain like 'prod.acme.org'"))
        return None
    strict = raw.get("strict", False)
    if not isinstance(strict, bool):
        problems.append(FieldIssue(f"{at}/strict", "must be true or false"))
    return IdentityBinding(str(raw["trustDomain"]), bool(strict))
