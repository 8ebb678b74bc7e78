"""The kinds the Kubernetes source watches, and how each raw object (a dict) becomes an ``Observation``.

API versions follow each project's CRDs as users run them today; the first listed is preferred, the others are
accepted when the cluster serves only those (discovery picks).

| group / kind | versions | catalog kind | health from | endpoint |
|---|---|---|---|---|
| kagent.dev Agent | v1alpha2, v1alpha1 | agent | Ready (a failed Accepted is critical) | kagent controller A2A proxy `/api/a2a/{ns}/{name}/` |
| kagent.dev SandboxAgent | v1alpha2 | agent | Ready (a failed Accepted is critical) | - |
| kagent.dev RemoteMCPServer | v1alpha2, v1alpha1 | mcp-server | Accepted | spec.url |
| kagent.dev MCPServer (kmcp) | v1alpha1, v1alpha2 | mcp-server | Ready (a failed Accepted/Programmed is critical) | Service `{name}:{port}{path or /mcp}` |
| kagent.dev ToolServer | v1alpha1 | mcp-server | Accepted | streamableHttp/sse url |
| kagent.dev ModelConfig | v1alpha2, v1alpha1 | model | Accepted | - |
| kagent.dev ModelProviderConfig | v1alpha2 | None (provider credentials) | Ready | - |
| agent.kagenti.dev AgentRuntime | v1alpha1 | agent, or mcp-server for type tool | Ready | status.card.url |
| agent.kagenti.dev AgentCard | v1alpha1 | agent | Synced; a failed signature warns | status.card.url |
| agentgateway.dev AgentgatewayBackend | v1alpha1 | mcp-server with spec.mcp, else None | Accepted | its one static MCP target |
| inference.networking.k8s.io InferencePool | v1 | None (pods serving models) | parents' Accepted/ResolvedRefs | - |
| inference.networking.x-k8s.io InferencePool | v1alpha2 | None | parents' Accepted/ResolvedRefs | - |
| inference.networking.x-k8s.io InferenceModel | v1alpha2 | model (spec.modelName) | Accepted | - |
| inference.networking.x-k8s.io InferenceObjective | v1alpha2 | None (a priority on a pool) | Accepted | - |
| llm-d.ai ModelService | v1alpha1 | model (spec.routing.modelName) | decode/prefill ready replicas | - |
| apps Deployment, StatefulSet | v1 | from `agentreg.dev/kind` only | ready vs desired replicas | Service selecting its pods |
| agents.x-k8s.io Sandbox | v1beta1, v1alpha1 | from `agentreg.dev/kind` only | Ready | status.serviceFQDN |

Deployments, StatefulSets and Sandboxes are observed only when annotated ``agentreg.dev/kind``. The revision
changes on a rollout: generation plus the runtime's own rollout marker (deployment revision, StatefulSet
update revision, card hash).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentreg.domain.health import Health, from_condition, from_replicas, worst
from agentreg.domain.inventory import KIND_ANNOTATION, Claim, ObjectKey, Observation, observed_labels
from agentreg.domain.kinds import Kind

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KAGENT_A2A_BASE = "http://kagent-controller.kagent.svc.cluster.local:8083/api/a2a"
_KIND_VALUES = {k.value: k for k in Kind}


@dataclass(frozen=True, slots=True)
class Services:
    """The Services of the cluster, by namespace: what a workload's endpoint is resolved against."""

    by_namespace: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def endpoint_for(self, namespace: str, pod_labels: Mapping[str, str]) -> str | None:
        """``http://{svc}.{ns}.svc.cluster.local:{port}`` of the first Service (by name) whose selector
        matches ``pod_labels``."""
        if not pod_labels:
            return None
        for name in sorted(self.by_namespace.get(namespace, {})):
            spec = self.by_namespace[namespace][name]
            selector = spec.get("selector") or {}
            if selector and all(pod_labels.get(k) == v for k, v in selector.items()):
                port = _service_port(spec.get("ports") or [])
                if port is not None:
                    return f"http://{name}.{namespace}.svc.cluster.local:{port}"
        return None


def _service_port(ports: list[Any]) -> int | None:
    preferred = ("a2a", "mcp", "http")
    named = {p.get("name"): p.get("port") for p in ports if isinstance(p, Mapping)}
    for name in preferred:
        port = named.get(name)
        if isinstance(port, int):
            return port
    for port in ports:
        if isinstance(port, Mapping) and isinstance(port.get("port"), int):
            return int(port["port"])
    return None


Mapper = Callable[["KindSpec", Mapping[str, Any], str, Services], Observation | None]


@dataclass(frozen=True, slots=True)
class KindSpec:
    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]
    mapper: Mapper
    namespaced: bool = True
    uses_services: bool = False  # its endpoint depends on Services (re-mapped when they change)

    @property
    def name(self) -> str:
        return f"{self.group}/{self.kind}" if self.group else self.kind

    def path(self, version: str, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"
        where = f"/namespaces/{namespace}" if namespace else ""
        return f"{root}{where}/{self.plural}"

    def map(self, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation | None:
        return self.mapper(self, raw, cluster, services)


# --- helpers shared by the mappers ---------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found = status.get("conditions")
    if not isinstance(found, list):
        return {}
    return {str(c.get("type")): c for c in found if isinstance(c, Mapping)}


def condition_health(status: Mapping[str, Any], *types: str) -> tuple[Health, str]:
    """Health from the first present condition of ``types`` (``Ready``, then ``Accepted``...)."""
    conditions = _conditions(status)
    for name in types:
        condition = conditions.get(name)
        if condition is not None:
            state = str(condition.get("status", "Unknown"))
            why = str(condition.get("reason") or "")
            message = str(condition.get("message") or "")
            text = f"{name}={state}" + (f" ({why})" if why else "") + (f": {message}" if message else "")
            return from_condition(state), text[:500]
    return Health.UNKNOWN, f"no {'/'.join(types)} condition yet"


def ready_health(status: Mapping[str, Any], *gates: str) -> tuple[Health, str]:
    """``Ready`` decides; before a controller reports it, a failed gate (``Accepted=False``) is critical and a
    passed one is still unknown (accepted is not serving)."""
    health, text = condition_health(status, "Ready")
    if not text.startswith("no ") or not gates:
        return health, text
    gate, why = condition_health(status, *gates)
    if gate is Health.CRITICAL:
        return gate, why
    return Health.UNKNOWN, f"not ready yet; {why}"


def replicas_health(desired: Any, ready: Any) -> tuple[Health, str]:
    want = desired if isinstance(desired, int) else None
    have = ready if isinstance(ready, int) else 0
    if want is None:
        return Health.UNKNOWN, "replicas unknown"
    return from_replicas(want, have), f"{have}/{want} replicas ready"


def _ready_fraction(text: Any) -> tuple[int, int] | None:
    """``"1/2"`` (llm-d ModelService status) as (ready, desired)."""
    if isinstance(text, str) and re.fullmatch(r"\d+/\d+", text):
        ready, desired = text.split("/")
        return int(ready), int(desired)
    return None


def _meta(raw: Mapping[str, Any]) -> dict[str, Any]:
    return _dict(raw.get("metadata"))


def _annotations(meta: Mapping[str, Any]) -> dict[str, str]:
    found = observed_labels(meta.get("annotations"))
    found.pop(LAST_APPLIED, None)
    return found


def _revision(meta: Mapping[str, Any], *more: Any) -> str:
    parts = [str(meta.get("generation", ""))] + [str(m) for m in more if m not in (None, "")]
    return ":".join(parts)


def _title(*candidates: Any) -> str:
    for text in candidates:
        if isinstance(text, str) and text.strip():
            return text.strip()[:200]
    return ""


def observation(
    spec: KindSpec,
    raw: Mapping[str, Any],
    cluster: str,
    *,
    catalog_kind: Kind | None,
    health: tuple[Health, str],
    spec_view: Mapping[str, Any] | None = None,
    title: str = "",
    endpoint: str | None = None,
    claim: Claim | None = None,
    revision: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Observation:
    """The parts every kind shares: identity, metadata (without managedFields or the last-applied
    annotation), trimmed spec and status."""
    meta = _meta(raw)
    name = str(meta.get("name", ""))
    return Observation(
        key=ObjectKey(cluster, spec.group, spec.kind, str(meta.get("namespace") or ""), name),
        api_version=str(raw.get("apiVersion", "")),
        uid=str(meta.get("uid", "")),
        catalog_kind=catalog_kind,
        title=title or name,
        spec=_dict(raw.get("spec")) if spec_view is None else dict(spec_view),
        status=_dict(raw.get("status")),
        labels=observed_labels(meta.get("labels")),
        annotations=_annotations(meta),
        health=health[0],
        health_reason=health[1],
        endpoint=endpoint,
        claim=claim,
        revision=revision if revision is not None else _revision(meta),
        extra=dict(extra or {}),
    )


def annotated_kind(raw: Mapping[str, Any]) -> tuple[bool, Kind | None]:
    """Whether ``agentreg.dev/kind`` is set, and the catalog kind it names (None when malformed)."""
    value = _dict(_meta(raw).get("annotations")).get(KIND_ANNOTATION)
    if not isinstance(value, str) or not value:
        return False, None
    return True, _KIND_VALUES.get(value.strip().lower())


def _claim_from_card(card: Mapping[str, Any]) -> Claim | None:
    name = card.get("name")
    if not isinstance(name, str) or not name:
        return None
    version = card.get("version")
    return Claim(name, version if isinstance(version, str) and version else None)


# --- kagent.dev ----------------------------------------------------------------------------------------


def _kagent_agent(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    meta, body = _meta(raw), _dict(raw.get("spec"))
    ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    # kagent serves every agent's A2A endpoint through its controller (A2AConfig doc in agent_types.go)
    endpoint = f"{KAGENT_A2A_BASE}/{ns}/{name}/" if spec.kind == "Agent" else None
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=Kind.AGENT,
        health=ready_health(_dict(raw.get("status")), "Accepted"),
        title=_title(body.get("description"), name),
        endpoint=endpoint,
    )


def _remote_mcp(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    body = _dict(raw.get("spec"))
    url = body.get("url")
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=Kind.MCP_SERVER,
        health=condition_health(_dict(raw.get("status")), "Ready", "Accepted"),
        title=_title(body.get("description"), _meta(raw).get("name")),
        endpoint=url if isinstance(url, str) and url else None,
    )


def _kmcp_server(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    meta, body = _meta(raw), _dict(raw.get("spec"))
    ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    deployment = _dict(body.get("deployment"))
    http = _dict(body.get("httpTransport"))
    port = http.get("targetPort") or deployment.get("port") or 3000
    path = str(http.get("path") or "/mcp")
    path = path if path.startswith("/") else f"/{path}"
    # kmcp fronts the server (stdio too) with a Service named after the MCPServer on spec.deployment.port
    endpoint = f"http://{name}.{ns}.svc.cluster.local:{deployment.get('port') or port}{path}"
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=Kind.MCP_SERVER,
        health=ready_health(_dict(raw.get("status")), "Programmed", "Accepted"),
        title=_title(name),
        endpoint=endpoint,
    )


def _tool_server(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    body = _dict(raw.get("spec"))
    config = _dict(body.get("config"))
    url = _dict(config.get("streamableHttp")).get("url") or _dict(config.get("sse")).get("url")
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=Kind.MCP_SERVER,
        health=condition_health(_dict(raw.get("status")), "Ready", "Accepted"),
        title=_title(body.get("description"), _meta(raw).get("name")),
        endpoint=url if isinstance(url, str) and url else None,
    )


def _model_config(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    body = _dict(raw.get("spec"))
    model = body.get("model")
    provider = body.get("provider")
    title = f"{provider} {model}" if provider and model else model
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=Kind.MODEL,
        health=condition_health(_dict(raw.get("status")), "Ready", "Accepted"),
        title=_title(title, _meta(raw).get("name")),
        claim=Claim(model) if isinstance(model, str) and model else None,
    )


def _provider_config(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    body = _dict(raw.get("spec"))
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=None,
        health=condition_health(_dict(raw.get("status")), "Ready"),
        title=_title(f"{body.get('type', '')} provider".strip(), _meta(raw).get("name")),
    )


# --- agent.kagenti.dev ---------------------------------------------------------------------------------

_RUNTIME_CARD_FIELDS = (
    "lastCardFetchTime",
    "cardHash",
    "protocol",
    "transportSecurity",
    "validSignature",
    "signatureKeyID",
    "signatureVerificationDetails",
    "attestedAgentSpiffeID",
)
_AGENTCARD_STATUS_FIELDS = (
    "lastSyncTime",
    "protocol",
    "validSignature",
    "signatureVerificationDetails",
    "signatureKeyId",
    "signatureSpiffeId",
    "signatureIdentityMatch",
    "cardId",
    "expectedSpiffeID",
    "bindingStatus",
    "sigstoreBundleVerified",
    "sigstoreIdentity",
)


def _agent_runtime(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    body, status = _dict(raw.get("spec")), _dict(raw.get("status"))
    held = _dict(status.get("card"))
    card = {k: v for k, v in held.items() if k not in _RUNTIME_CARD_FIELDS}
    runtime = {k: held[k] for k in _RUNTIME_CARD_FIELDS if k in held}
    if body.get("identity"):
        runtime["identity"] = body["identity"]
    url = card.get("url")
    kind = Kind.MCP_SERVER if body.get("type") == "tool" else Kind.AGENT
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=kind,
        health=condition_health(status, "Ready"),
        title=_title(card.get("name"), card.get("description"), _meta(raw).get("name")),
        endpoint=url if isinstance(url, str) and url else None,
        claim=_claim_from_card(card) if kind is Kind.AGENT else None,
        revision=_revision(_meta(raw), held.get("cardHash")),
        extra={"heldCard": {"card": card, "runtime": runtime}} if card else None,
    )


def _agent_card(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    body, status = _dict(raw.get("spec")), _dict(raw.get("status"))
    card = _dict(status.get("card"))
    runtime = {k: status[k] for k in _AGENTCARD_STATUS_FIELDS if k in status}
    if body.get("identityBinding"):
        runtime["identityBinding"] = body["identityBinding"]
    health = condition_health(status, "Synced", "Ready")
    if status.get("validSignature") is False:
        detail = str(status.get("signatureVerificationDetails") or "signature not valid")
        health = (worst(health[0], Health.WARNING), f"{health[1]}; {detail}"[:500])
    url = card.get("url")
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=Kind.AGENT,
        health=health,
        title=_title(card.get("name"), card.get("description"), _meta(raw).get("name")),
        endpoint=url if isinstance(url, str) and url else None,
        claim=_claim_from_card(card),
        revision=_revision(_meta(raw), status.get("cardId")),
        extra={"heldCard": {"card": card, "runtime": runtime}} if card else None,
    )


# --- agentgateway.dev ----------------------------------------------------------------------------------


def mcp_targets(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Static MCP targets of an AgentgatewayBackend as ``{name, url, protocol}``."""
    found: list[dict[str, Any]] = []
    for target in _dict(body.get("mcp")).get("targets") or []:
        static = _dict(_dict(target).get("static"))
        host, port = static.get("host"), static.get("port")
        if not isinstance(host, str) or not host:
            continue
        protocol = str(static.get("protocol") or "StreamableHTTP")
        tls = "tls" in _dict(static.get("policies")) or port == 443
        path = static.get("path") or ("/sse" if protocol.upper() == "SSE" else "/mcp")
        where = f"{host}:{port}" if port else host
        scheme = "https" if tls else "http"
        found.append({"name": target.get("name"), "url": f"{scheme}://{where}{path}", "protocol": protocol})
    return found


def _gateway_backend(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    body = _dict(raw.get("spec"))
    is_mcp = "mcp" in body
    targets = mcp_targets(body)
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=Kind.MCP_SERVER if is_mcp else None,
        health=condition_health(_dict(raw.get("status")), "Accepted", "Ready"),
        title=_title(_meta(raw).get("name")),
        endpoint=targets[0]["url"] if len(targets) == 1 else None,
        extra={"mcpTargets": targets} if targets else None,
    )


# --- inference.networking.(x-)k8s.io and llm-d.ai ------------------------------------------------------


def _inference_pool(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    status = _dict(raw.get("status"))
    parents = status.get("parents") or status.get("parent") or []  # v1 "parents", v1alpha2 "parent"
    healths: list[Health] = []
    reasons: list[str] = []
    for parent in parents if isinstance(parents, list) else []:
        for kind in ("Accepted", "ResolvedRefs"):
            health, text = condition_health(_dict(parent), kind)
            if not text.startswith("no "):
                healths.append(health)
                reasons.append(text)
    found = (worst(*healths), "; ".join(reasons)[:500]) if healths else (Health.UNKNOWN, "no parent yet")
    return observation(spec, raw, cluster, catalog_kind=None, health=found)


def _inference_model(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    body = _dict(raw.get("spec"))
    model = body.get("modelName")
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=Kind.MODEL,
        health=condition_health(_dict(raw.get("status")), "Ready", "Accepted"),
        title=_title(model, _meta(raw).get("name")),
        claim=Claim(model) if isinstance(model, str) and model else None,
    )


def _inference_objective(
    spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services
) -> Observation:
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=None,
        health=condition_health(_dict(raw.get("status")), "Ready", "Accepted"),
    )


def _model_service(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation:
    body, status = _dict(raw.get("spec")), _dict(raw.get("status"))
    model = _dict(body.get("routing")).get("modelName")
    healths: list[Health] = []
    reasons: list[str] = []
    for role in ("decode", "prefill"):
        fraction = _ready_fraction(status.get(f"{role}Ready"))
        if fraction is not None:
            health, text = replicas_health(fraction[1], fraction[0])
            healths.append(health)
            reasons.append(f"{role} {text}")
    found = (worst(*healths), "; ".join(reasons)) if healths else condition_health(status, "DecodeAvailable")
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=Kind.MODEL,
        health=found,
        title=_title(model, _dict(body.get("modelArtifacts")).get("uri"), _meta(raw).get("name")),
        claim=Claim(model) if isinstance(model, str) and model else None,
    )


# --- workloads annotated agentreg.dev/kind ------------------------------------------------------------


def _pod_template_view(template: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template without its bulk: labels, annotations, and each container's name, image and ports."""
    meta, pod = _dict(template.get("metadata")), _dict(template.get("spec"))
    containers = [
        {k: c[k] for k in ("name", "image", "ports") if k in c}
        for c in pod.get("containers") or []
        if isinstance(c, Mapping)
    ]
    return {
        "metadata": {k: meta[k] for k in ("labels", "annotations") if k in meta},
        "spec": {"containers": containers},
    }


def _workload(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation | None:
    annotated, kind = annotated_kind(raw)
    if not annotated:
        return None
    meta, body, status = _meta(raw), _dict(raw.get("spec")), _dict(raw.get("status"))
    template = _dict(body.get("template"))
    view = {k: v for k, v in body.items() if k != "template"}
    view["template"] = _pod_template_view(template)
    pod_labels = observed_labels(_dict(template.get("metadata")).get("labels"))
    desired = body.get("replicas", 1)
    health = replicas_health(desired, status.get("readyReplicas"))
    if spec.kind == "Deployment":
        marker = _dict(meta.get("annotations")).get("deployment.kubernetes.io/revision")
    else:
        marker = status.get("updateRevision")
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=kind,
        health=health,
        spec_view=view,
        endpoint=services.endpoint_for(str(meta.get("namespace", "")), pod_labels),
        revision=_revision(meta, marker),
    )


def _sandbox(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation | None:
    annotated, kind = annotated_kind(raw)
    if not annotated:
        return None
    body, status = _dict(raw.get("spec")), _dict(raw.get("status"))
    template = _dict(body.get("podTemplate"))
    view = {k: v for k, v in body.items() if k != "podTemplate"}
    view["podTemplate"] = _pod_template_view(template)
    fqdn = status.get("serviceFQDN")
    endpoint = None
    if isinstance(fqdn, str) and fqdn:
        ports = [
            p.get("containerPort")
            for c in _dict(template.get("spec")).get("containers") or []
            for p in _dict(c).get("ports") or []
            if isinstance(p, Mapping)
        ]
        endpoint = f"http://{fqdn}:{ports[0]}" if ports and isinstance(ports[0], int) else f"http://{fqdn}"
    return observation(
        spec,
        raw,
        cluster,
        catalog_kind=kind,
        health=condition_health(status, "Ready"),
        spec_view=view,
        endpoint=endpoint,
    )


def _service(spec: KindSpec, raw: Mapping[str, Any], cluster: str, services: Services) -> Observation | None:
    return None  # watched to resolve workload endpoints, never emitted


KINDS: tuple[KindSpec, ...] = (
    KindSpec("kagent.dev", "Agent", "agents", ("v1alpha2", "v1alpha1"), _kagent_agent),
    KindSpec("kagent.dev", "SandboxAgent", "sandboxagents", ("v1alpha2",), _kagent_agent),
    KindSpec("kagent.dev", "RemoteMCPServer", "remotemcpservers", ("v1alpha2", "v1alpha1"), _remote_mcp),
    KindSpec("kagent.dev", "MCPServer", "mcpservers", ("v1alpha1", "v1alpha2"), _kmcp_server),
    KindSpec("kagent.dev", "ToolServer", "toolservers", ("v1alpha1",), _tool_server),
    KindSpec("kagent.dev", "ModelConfig", "modelconfigs", ("v1alpha2", "v1alpha1"), _model_config),
    KindSpec("kagent.dev", "ModelProviderConfig", "modelproviderconfigs", ("v1alpha2",), _provider_config),
    KindSpec("agent.kagenti.dev", "AgentRuntime", "agentruntimes", ("v1alpha1",), _agent_runtime),
    KindSpec("agent.kagenti.dev", "AgentCard", "agentcards", ("v1alpha1",), _agent_card),
    KindSpec(
        "agentgateway.dev", "AgentgatewayBackend", "agentgatewaybackends", ("v1alpha1",), _gateway_backend
    ),
    KindSpec("inference.networking.k8s.io", "InferencePool", "inferencepools", ("v1",), _inference_pool),
    KindSpec(
        "inference.networking.x-k8s.io", "InferencePool", "inferencepools", ("v1alpha2",), _inference_pool
    ),
    KindSpec(
        "inference.networking.x-k8s.io", "InferenceModel", "inferencemodels", ("v1alpha2",), _inference_model
    ),
    KindSpec(
        "inference.networking.x-k8s.io",
        "InferenceObjective",
        "inferenceobjectives",
        ("v1alpha2",),
        _inference_objective,
    ),
    KindSpec("llm-d.ai", "ModelService", "modelservices", ("v1alpha1",), _model_service),
    KindSpec("apps", "Deployment", "deployments", ("v1",), _workload, uses_services=True),
    KindSpec("apps", "StatefulSet", "statefulsets", ("v1",), _workload, uses_services=True),
    KindSpec("agents.x-k8s.io", "Sandbox", "sandboxes", ("v1beta1", "v1alpha1"), _sandbox),
)
SERVICES = KindSpec("", "Service", "services", ("v1",), _service)
_BY_GROUP_KIND = {(k.group, k.kind): k for k in (*KINDS, SERVICES)}


def selected(names: Iterable[str]) -> tuple[KindSpec, ...]:
    """The kinds a source watches: all, or those named as ``Kind`` or ``group/Kind``."""
    wanted = set(names)
    if not wanted:
        return KINDS
    return tuple(k for k in KINDS if k.kind in wanted or k.name in wanted)


def spec_for(api_version: str, kind: str) -> KindSpec | None:
    """The spec of a raw object's ``apiVersion``/``kind`` (``v1`` is the core group)."""
    group = api_version.rpartition("/")[0]
    return _BY_GROUP_KIND.get((group, kind))


def service_view(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What endpoint resolution needs of a Service: its selector and ports."""
    body = _dict(raw.get("spec"))
    return {"selector": observed_labels(body.get("selector")), "ports": list(body.get("ports") or [])}


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)?\s*([A-Za-z0-9_.-]*)\s*$")


def label_matcher(selector: str | None) -> Callable[[Mapping[str, str]], bool]:
    """An in-memory label selector (equality, inequality and existence requirements) for dumped objects."""
    if not selector:
        return lambda labels: True
    checks: list[tuple[str, str | None, str]] = []
    for part in selector.split(","):
        if not part.strip():
            continue
        negate = part.strip().startswith("!")
        found = _REQUIREMENT.match(part.strip().lstrip("!"))
        if found is None:
            raise ValueError(f"unsupported label selector requirement {part!r}")
        key, op, value = found.groups()
        checks.append((key, "!" if negate else op, value))

    def matches(labels: Mapping[str, str]) -> bool:
        for key, op, value in checks:
            if op is None and key not in labels:
                return False
            if op == "!" and key in labels:
                return False
            if op in ("=", "==") and labels.get(key) != value:
                return False
            if op == "!=" and labels.get(key) == value:
                return False
        return True

    return matches
