"""Test data: envelopes for every kind, built the way users write them."""

from __future__ import annotations

import copy
from typing import Any

from agentreg.domain.kinds import Kind

NS = "com.acme"


def skill(
    name: str = "triage", version: str = "1.0.0", *, namespace: str = NS, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Skill",
        "metadata": {"namespace": namespace, "name": name, "version": version},
        "spec": {"description": f"{name} skill", "instructions": "Do the thing.", **spec},
    }


def model(name: str = "llama", version: str = "1.0.0", *, namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Model",
        "metadata": {"namespace": namespace, "name": name, "version": version},
        "spec": {
            "provider": "vllm",
            "model": "meta-llama/Llama-3-8B",
            "endpoint": {"baseUrl": "https://llm.example/v1"},
        },
    }


def mcp_server(
    name: str = "github", version: str = "1.0.0", *, namespace: str = NS, **extra: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "agentreg.dev/v1",
        "kind": "MCPServer",
        "metadata": {"namespace": namespace, "name": name, "version": version},
        "spec": {
            "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
            "name": f"{namespace}/{name}",
            "description": f"The {name} MCP server",
            "version": version,
            "packages": [
                {
                    "registryType": "npm",
                    "identifier": f"@acme/{name}",
                    "version": version,
                    "transport": {"type": "stdio"},
                }
            ],
            **extra,
        },
    }


def card_03(version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {
        "protocolVersion": "0.3.0",
        "name": "Support Bot",
        "description": "Answers questions",
        "url": "https://agents.example/support",
        "version": version,
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "answer", "name": "Answer", "description": "Answers", "tags": ["support"]}],
        **extra,
    }


def card_10(version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {
        "name": "Research",
        "description": "Researches",
        "supportedInterfaces": [
            {"url": "https://agents.example/research", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "protocolVersion": "1.0",
        "version": version,
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "brief", "name": "Brief", "description": "Writes briefs", "tags": ["research"]}],
        **extra,
    }


def agent(
    name: str = "support-bot",
    version: str = "1.0.0",
    *,
    namespace: str = NS,
    card: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"card": card if card is not None else card_03(version)}
    if config is not None:
        spec["config"] = config
    return {
        "apiVersion": "agentreg.dev/v1",
        "kind": "Agent",
        "metadata": {"namespace": namespace, "name": name, "version": version},
        "spec": spec,
    }


def with_(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` with the value at a slash path set (or removed if value is ...)."""
    result = copy.deepcopy(document)
    *parents, last = path.strip("/").split("/")
    target: Any = result
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is ...:
        del target[int(last) if isinstance(target, list) else last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return result


def skill_kind() -> Kind:
    return Kind.SKILL
