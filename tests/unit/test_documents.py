"""Envelope and spec validation: what real documents look like, and a named field for every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentreg.domain.documents import parse_document
from agentreg.domain.errors import Invalid
from agentreg.domain.kinds import Kind
from tests import factories as f

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def fields_of(error: Invalid) -> list[str]:
    return [d.field for d in error.details]


def refuse(document: dict[str, object]) -> list[str]:
    with pytest.raises(Invalid) as caught:
        parse_document(document)
    return fields_of(caught.value)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_valid_without_warnings(path: Path) -> None:
    import yaml

    validated = parse_document(yaml.safe_load(path.read_text()))
    assert validated.warnings == ()


def test_digest_covers_identity_and_spec_but_not_labels() -> None:
    a = parse_document(f.skill())
    labelled = f.with_(f.skill(), "/metadata/labels", {"team": "x"})
    assert parse_document(labelled).digest == a.digest
    assert parse_document(f.with_(f.skill(), "/spec/license", "MIT")).digest != a.digest
    assert parse_document(f.with_(f.skill(), "/kind", "skills")).digest == a.digest


def test_missing_required_field_is_reported_at_the_field_itself() -> None:
    card = f.card_03()
    del card["skills"]
    assert refuse(f.agent(card=card)) == ["/spec/card/skills"]


def test_envelope_problems_are_all_named() -> None:
    assert refuse({"apiVersion": "v2", "kind": "Agent", "metadata": {}, "spec": {}, "status": {}}) == [
        "/status",
        "/apiVersion",
    ]
    assert set(refuse({"kind": "Skill", "metadata": {"namespace": "a"}, "spec": {}})) == {
        "/metadata/name",
        "/metadata/version",
    }


def test_non_semver_versions_are_refused_except_for_mcp_servers() -> None:
    assert refuse(f.skill(version="1.0")) == ["/metadata/version"]
    validated = parse_document(f.mcp_server(version="2025.01.15"))
    assert validated.semver_key is None


@pytest.mark.parametrize("version", ["^1.2.0", "latest", "1.x", ">=1.0", "1.0 - 2.0"])
def test_mcp_versions_that_read_as_ranges_are_refused(version: str) -> None:
    assert refuse(f.mcp_server(version=version)) == ["/metadata/version"]


def test_a2a_03_card_without_protocol_version_is_accepted_with_a_warning() -> None:
    card = f.card_03()
    del card["protocolVersion"]
    validated = parse_document(f.agent(card=card))
    assert [w.field for w in validated.warnings] == ["/spec/card/protocolVersion"]
    assert validated.facts.protocol == "0.3"
    assert "protocolVersion" not in validated.document.spec["card"]  # stored as given


def test_a2a_10_card_is_validated_against_the_derived_schema() -> None:
    validated = parse_document(f.agent(card=f.card_10()))
    assert validated.facts.protocol == "1.0" and validated.warnings == ()
    broken = f.card_10()
    del broken["supportedInterfaces"][0]["url"]
    assert refuse(f.agent(card=broken)) == ["/spec/card/supportedInterfaces/0/url"]


def test_card_with_both_url_and_interfaces_is_accepted_with_a_warning() -> None:
    validated = parse_document(f.agent(card=f.card_10(url="https://legacy.example")))
    assert [w.field for w in validated.warnings] == ["/spec/card/url"]


def test_interface_without_protocol_version_is_inferred_with_a_warning() -> None:
    card = f.card_10()
    del card["supportedInterfaces"][0]["protocolVersion"]
    validated = parse_document(f.agent(card=card))
    assert [w.field for w in validated.warnings] == ["/spec/card/supportedInterfaces/0/protocolVersion"]


def test_unknown_card_fields_are_kept() -> None:
    validated = parse_document(f.agent(card=f.card_03(**{"x-team": {"slack": "#bots"}})))
    assert validated.document.spec["card"]["x-team"] == {"slack": "#bots"}


def test_card_version_must_equal_metadata_version() -> None:
    assert refuse(f.agent(version="1.0.0", card=f.card_03("1.0.1"))) == ["/spec/card/version"]


def test_config_refs_are_parsed_with_their_slot_kind() -> None:
    config = {
        "model": {"ref": "com.acme/llama@^1"},
        "mcpServers": [{"ref": "com.acme/github@stable", "tools": ["x"]}],
    }
    validated = parse_document(f.agent(config=config))
    assert [(at, ref.kind) for at, ref in validated.facts.refs] == [
        ("/spec/config/model/ref", Kind.MODEL),
        ("/spec/config/mcpServers/0/ref", Kind.MCP_SERVER),
    ]
    bad = {"skills": [{"ref": "model/com.acme/llama"}]}
    assert refuse(f.agent(config=bad)) == ["/spec/config/skills/0/ref"]


def test_mcp_server_name_and_version_must_match_metadata() -> None:
    assert refuse(f.with_(f.mcp_server(), "/spec/name", "com.other/github")) == ["/spec/name"]
    assert refuse(f.with_(f.mcp_server(), "/spec/version", "9.9.9")) == ["/spec/version"]


def test_secret_inputs_must_not_carry_literal_values() -> None:
    env = [{"name": "TOKEN", "isSecret": True, "value": "ghp_live_secret"}]
    server = f.with_(f.mcp_server(), "/spec/packages/0/environmentVariables", env)
    assert refuse(server) == ["/spec/packages/0/environmentVariables/0/value"]
    env[0]["value"] = "Bearer {token}"  # a reference to an input variable, not a literal
    assert parse_document(f.with_(f.mcp_server(), "/spec/packages/0/environmentVariables", env))


def test_mcp_server_json_with_an_older_schema_validates_against_that_schema() -> None:
    server = f.mcp_server()
    server["spec"]["$schema"] = "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json"
    server["spec"]["packages"][0]["registryType"] = "npm"
    assert parse_document(server).warnings == ()


def test_mcp_server_json_that_only_an_other_released_schema_accepts_gets_a_warning() -> None:
    old = {
        "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
        "name": "com.acme/legacy",
        "description": "Published with the July 2025 shape",
        "version": "1.0.0",
        "status": "active",
        "packages": [
            {
                "registry_type": "npm",
                "identifier": "@acme/legacy",
                "version": "1.0.0",
                "transport": {"type": "stdio"},
            }
        ],
    }
    document = {
        "kind": "MCPServer",
        "metadata": {"namespace": "com.acme", "name": "legacy", "version": "1.0.0"},
        "spec": old,
    }
    validated = parse_document(document)
    assert [w.field for w in validated.warnings] == ["/spec/$schema"]
    assert "server.schema.2025-07-09.json" in validated.warnings[0].issue


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("/metadata/version", "{{VERSION}}", "/metadata/version"),
        ("/spec/packages/0/identifier", "@acme/${NAME}", "/spec/packages/0/identifier"),
        (
            "/spec/repository",
            {"url": "https://github.com/acme/<<repo>>", "source": "github"},
            "/spec/repository/url",
        ),
    ],
)
def test_unfilled_template_placeholders_are_refused(path: str, value: object, field: str) -> None:
    assert field in refuse(f.with_(f.mcp_server(), path, value))


def test_labels_must_be_strings_with_valid_keys() -> None:
    assert refuse(f.with_(f.skill(), "/metadata/labels", {"team": 3})) == ["/metadata/labels/team"]
    assert refuse(f.with_(f.skill(), "/metadata/labels", {"bad key": "x"})) == ["/metadata/labels/bad key"]


def test_skill_and_model_specs_have_schemas() -> None:
    assert refuse(f.with_(f.skill(), "/spec/description", ...)) == ["/spec/description"]
    assert refuse(f.with_(f.model(), "/spec/provider", ...)) == ["/spec/provider"]
    assert json.dumps(parse_document(f.model()).document.spec)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/metadata/namespace", "com.acme\n"),
        ("/metadata/name", "triage\n"),
        ("/metadata/version", "1.0.0\n"),
        ("/metadata/version", "1.1\u0662.3"),  # an Arabic-Indic digit is not a SemVer digit
        ("/metadata/name", ".."),
    ],
)
def test_look_alike_identities_are_refused(path: str, value: str) -> None:
    assert refuse(f.with_(f.skill(), path, value)) == [path]


def test_names_follow_the_registry_character_sets() -> None:
    assert parse_document(f.skill("_internal.tool-2")).document.name == "_internal.tool-2"
    assert parse_document(f.skill(namespace="-acme.io")).document.namespace == "-acme.io"


def test_a_secret_input_must_not_carry_a_literal_default_either() -> None:
    env = [{"name": "TOKEN", "isSecret": True, "default": "sk-live-123"}]
    assert refuse(f.with_(f.mcp_server(), "/spec/packages/0/environmentVariables", env)) == [
        "/spec/packages/0/environmentVariables/0/default"
    ]


def test_documents_over_one_mebibyte_in_canonical_form_are_too_large() -> None:
    from agentreg.domain.errors import TooLarge

    with pytest.raises(TooLarge):
        parse_document(f.with_(f.skill(), "/spec/instructions", "x" * (1024 * 1024)))
