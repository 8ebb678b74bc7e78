"""The Kubernetes mappers: raw objects from the projects' examples become the observations we expect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agentreg.domain.health import Health
from agentreg.domain.inventory import Claim, ObjectKey, Observation
from agentreg.domain.kinds import Kind
from agentreg.sources.kubernetes.kinds import (
    KINDS,
    Services,
    label_matcher,
    mcp_targets,
    selected,
    service_view,
    spec_for,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "support" / "kube"


def _objects() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        found.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
    return found


def _services() -> Services:
    by_ns: dict[str, dict[str, Any]] = {}
    for obj in _objects():
        if obj["kind"] == "Service":
            by_ns.setdefault(obj["metadata"]["namespace"], {})[obj["metadata"]["name"]] = service_view(obj)
    return Services(by_ns)


def _observe(kind: str, name: str, **changes: Any) -> Observation | None:
    obj = next(o for o in _objects() if o["kind"] == kind and o["metadata"]["name"] == name)
    for path, value in changes.items():
        target = obj
        *parents, last = path.split("__")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    spec = spec_for(obj["apiVersion"], kind)
    assert spec is not None
    return spec.map(obj, "prod-eu", _services())


def _seen(kind: str, name: str, **changes: Any) -> Observation:
    found = _observe(kind, name, **changes)
    assert found is not None
    return found


def test_every_example_object_maps_to_a_known_kind() -> None:
    for obj in _objects():
        assert spec_for(obj["apiVersion"], obj["kind"]) is not None, obj["kind"]


def test_kagent_agent_maps_identity_health_and_a2a_endpoint() -> None:
    seen = _seen("Agent", "k8s-agent")
    assert seen.key == ObjectKey("prod-eu", "kagent.dev", "Agent", "kagent", "k8s-agent")
    assert seen.api_version == "kagent.dev/v1alpha2"
    assert seen.catalog_kind is Kind.AGENT
    assert seen.health is Health.PASSING
    assert seen.title.startswith("An Kubernetes Expert")
    assert seen.endpoint == "http://kagent-controller.kagent.svc.cluster.local:8083/api/a2a/kagent/k8s-agent/"
    assert seen.declared_ref == "kagent/k8s-agent@0.7.0"


def test_managed_fields_and_last_applied_annotation_are_dropped() -> None:
    seen = _seen("Agent", "k8s-agent")
    assert "kubectl.kubernetes.io/last-applied-configuration" not in seen.annotations
    assert "managedFields" not in seen.to_json()["spec"]
    assert seen.labels == {"app.kubernetes.io/part-of": "kagent"}


def test_agent_not_ready_is_critical_with_the_conditions_reason() -> None:
    conditions = [{"type": "Ready", "status": "False", "reason": "DeploymentNotReady", "message": "0/1"}]
    seen = _seen("Agent", "k8s-agent", status__conditions=conditions)
    assert seen.health is Health.CRITICAL
    assert "DeploymentNotReady" in seen.health_reason


def test_agent_without_conditions_is_unknown() -> None:
    assert _seen("Agent", "k8s-agent", status={}).health is Health.UNKNOWN


def test_remote_mcp_server_endpoint_is_its_url() -> None:
    seen = _seen("RemoteMCPServer", "kagent-tool-server")
    assert seen.catalog_kind is Kind.MCP_SERVER
    assert seen.endpoint == "http://kagent-tool-server.kagent:8084/mcp".replace(
        "kagent-tool-server", "kagent-tools"
    )
    assert seen.health is Health.PASSING
    assert seen.title == "Official KAgent tool server"


def test_kmcp_server_endpoint_is_its_service_and_ready_drives_health() -> None:
    seen = _seen("MCPServer", "test-mcp-server")
    assert seen.endpoint == "http://test-mcp-server.kagent.svc.cluster.local:3000/mcp"
    assert seen.health is Health.CRITICAL  # Ready=False though Programmed
    http = _seen(
        "MCPServer",
        "test-mcp-server",
        spec__transportType="http",
        spec__httpTransport={"targetPort": 3000, "path": "/api/mcp"},
    )
    assert http.endpoint == "http://test-mcp-server.kagent.svc.cluster.local:3000/api/mcp"


def test_tool_server_and_model_kinds() -> None:
    tools = _seen("ToolServer", "legacy-tools")
    assert tools.endpoint == "http://legacy-tools.kagent:8080/mcp"
    assert tools.health is Health.CRITICAL
    model = _seen("ModelConfig", "default-model-config")
    assert model.catalog_kind is Kind.MODEL
    assert model.claim == Claim("gpt-4.1-mini")
    assert model.title == "OpenAI gpt-4.1-mini"
    provider = _seen("ModelProviderConfig", "openai")
    assert provider.catalog_kind is None
    assert provider.health is Health.PASSING


def test_sandbox_agent_is_an_agent_without_a_known_endpoint() -> None:
    seen = _seen("SandboxAgent", "coder")
    assert seen.catalog_kind is Kind.AGENT
    assert seen.endpoint is None
    assert seen.health is Health.UNKNOWN  # Accepted is there, Ready is what tells
    assert "not ready yet" in seen.health_reason


def test_agent_runtime_holds_the_card_it_fetched() -> None:
    seen = _seen("AgentRuntime", "weather-agent")
    assert seen.catalog_kind is Kind.AGENT
    assert seen.claim == Claim("Weather Agent", "1.0.0")
    assert seen.endpoint == "http://weather-agent.team1.svc.cluster.local:8000"
    held = seen.extra["heldCard"]
    assert held["card"]["name"] == "Weather Agent"
    assert "cardHash" not in held["card"]
    assert held["runtime"]["validSignature"] is True
    assert held["runtime"]["attestedAgentSpiffeID"] == "spiffe://example.org/ns/team1/sa/weather-agent"
    assert held["runtime"]["identity"] == {"spiffe": {"trustDomain": "example.org"}}
    assert seen.revision.endswith(held["runtime"]["cardHash"])


def test_agent_runtime_of_type_tool_is_an_mcp_server() -> None:
    assert _seen("AgentRuntime", "weather-agent", spec__type="tool").catalog_kind is Kind.MCP_SERVER


def test_agent_card_with_a_bad_signature_warns_and_keeps_the_binding_results() -> None:
    seen = _seen("AgentCard", "weather-agent-card")
    assert seen.health is Health.WARNING
    assert "trust bundle" in seen.health_reason
    runtime = seen.extra["heldCard"]["runtime"]
    assert runtime["validSignature"] is False
    assert runtime["bindingStatus"]["bound"] is False
    assert runtime["identityBinding"] == {"trustDomain": "example.org", "strict": True}
    assert seen.claim == Claim("Weather Agent", "1.0.0")


def test_gateway_backend_static_mcp_target_is_its_endpoint() -> None:
    single = _seen("AgentgatewayBackend", "mcp-target-static-only")
    assert single.catalog_kind is Kind.MCP_SERVER
    assert single.endpoint == "http://petstore.example.com:8080/mcp"
    several = _seen("AgentgatewayBackend", "mcp-full")
    assert several.endpoint == "https://example.com:443/mcp"  # one static target; the selector has no URL
    assert several.health is Health.UNKNOWN
    ai = _seen("AgentgatewayBackend", "ai-simple")
    assert ai.catalog_kind is None and ai.endpoint is None


def test_mcp_targets_follow_protocol_and_path() -> None:
    body = {"mcp": {"targets": [{"name": "a", "static": {"host": "h", "port": 3000, "protocol": "SSE"}}]}}
    assert mcp_targets(body) == [{"name": "a", "url": "http://h:3000/sse", "protocol": "SSE"}]
    body = {"mcp": {"targets": [{"name": "b", "static": {"host": "h", "port": 80, "path": "/x"}}]}}
    assert mcp_targets(body)[0]["url"] == "http://h:80/x"


def test_inference_kinds() -> None:
    pool = _seen("InferencePool", "vllm-llama3-8b-instruct")
    assert pool.catalog_kind is None
    assert pool.health is Health.PASSING
    assert pool.key.group == "inference.networking.k8s.io"
    no_parent = _seen("InferencePool", "vllm-llama3-8b-instruct", status={})
    assert no_parent.health is Health.UNKNOWN
    model = _seen("InferenceModel", "food-review")
    assert model.catalog_kind is Kind.MODEL and model.claim == Claim("food-review")
    objective = _seen("InferenceObjective", "food-review")
    assert objective.catalog_kind is None and objective.health is Health.UNKNOWN


def test_llm_d_model_service_health_is_its_worst_role() -> None:
    seen = _seen("ModelService", "facebook-opt-125m")
    assert seen.catalog_kind is Kind.MODEL
    assert seen.claim == Claim("facebook/opt-125m")
    assert seen.health is Health.WARNING
    assert "decode 1/2" in seen.health_reason


def test_annotated_deployment_gets_its_service_endpoint_and_replica_health() -> None:
    seen = _seen("Deployment", "weather-agent")
    assert seen.catalog_kind is Kind.AGENT
    assert seen.endpoint == "http://weather-agent.team1.svc.cluster.local:8000"
    assert seen.health is Health.WARNING
    assert seen.health_reason == "1/2 replicas ready"
    assert seen.spec["template"]["spec"]["containers"][0] == {
        "name": "agent",
        "image": "ghcr.io/kagenti/agent-examples/weather_service:v0.1.0",
        "ports": [{"containerPort": 8000}],
    }
    assert seen.revision == "3:2"


def test_revision_changes_on_rollout() -> None:
    before = _seen("Deployment", "weather-agent")
    after = _seen(
        "Deployment",
        "weather-agent",
        metadata__generation=4,
        metadata__annotations={"agentreg.dev/kind": "agent", "deployment.kubernetes.io/revision": "3"},
    )
    assert before.revision != after.revision
    sts = _seen("StatefulSet", "github-mcp")
    assert sts.revision.endswith("github-mcp-5d8f7c9b4")


def test_unannotated_workloads_are_not_observed() -> None:
    assert _observe("Deployment", "redis") is None


def test_malformed_kind_annotation_keeps_the_object_without_a_catalog_kind() -> None:
    seen = _seen("StatefulSet", "github-mcp", metadata__annotations={"agentreg.dev/kind": "database"})
    assert seen.catalog_kind is None


def test_workload_without_a_matching_service_has_no_endpoint() -> None:
    sts = _seen("StatefulSet", "github-mcp")
    assert sts.endpoint is None
    assert sts.catalog_kind is Kind.MCP_SERVER
    assert sts.health is Health.PASSING


def test_sandbox_endpoint_is_its_service_fqdn_and_port() -> None:
    seen = _seen("Sandbox", "sandbox-example")
    assert seen.endpoint == "http://sandbox-example.team1.svc.cluster.local:8888"
    assert seen.health is Health.PASSING
    assert seen.key.group == "agents.x-k8s.io"


def test_service_endpoint_prefers_named_ports() -> None:
    services = Services(
        {
            "ns": {
                "svc": {
                    "selector": {"app": "a"},
                    "ports": [{"name": "metrics", "port": 9090}, {"name": "a2a", "port": 8080}],
                }
            }
        }
    )
    assert services.endpoint_for("ns", {"app": "a", "x": "y"}) == "http://svc.ns.svc.cluster.local:8080"
    assert services.endpoint_for("ns", {"app": "b"}) is None
    assert services.endpoint_for("other", {"app": "a"}) is None


def test_selected_kinds_by_name_or_group() -> None:
    assert selected(()) == KINDS
    names = {k.name for k in selected(("Agent", "inference.networking.k8s.io/InferencePool"))}
    assert names == {"kagent.dev/Agent", "inference.networking.k8s.io/InferencePool"}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("team=weather", {"team": "weather"}, True),
        ("team=weather", {"team": "other"}, False),
        ("team!=weather", {"team": "other"}, True),
        ("team", {}, False),
        ("!team", {}, True),
        ("a=1,b=2", {"a": "1", "b": "2"}, True),
        (None, {}, True),
    ],
)
def test_label_matcher(selector: str | None, labels: dict[str, str], expected: bool) -> None:
    assert label_matcher(selector)(labels) is expected
