"""The policy document (every problem named by its JSON pointer) and admission, rule by rule.

Hypothesis checks the parser's robustness (arbitrary JSON is refused only ever with ``Invalid``) and that
rendering a parsed policy with its defaults parses back to the same policy.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentreg.domain.errors import FieldIssue, Invalid
from agentreg.domain.gates import ApprovalsGate, UsageGate
from agentreg.domain.lifecycle import State
from agentreg.domain.policy import (
    DEFAULT_POLICY,
    Candidate,
    Decision,
    Effect,
    Exemption,
    Outcome,
    Phase,
    Policy,
    admit,
    parse_policy,
    render_policy,
)
from agentreg.domain.policy_document import parse_exempted_rules, parse_exemption_resource

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FULL: dict[str, Any] = {
    "apiVersion": "agentreg.dev/v1",
    "kind": "Policy",
    "spec": {
        "lifecycle": {
            "initialState": "draft",
            "gates": {"certified": {"approvals": {"count": 2}, "usage": None}},
        },
        "compatibility": {"breaking": "refuse"},
        "allow": [{"name": "com.acme/*", "kind": "agent", "versions": ">=1.0.0", "reason": "ours"}],
        "deny": [{"name": "com.evil/*", "versions": "<2.0.0", "reason": "CVE-2026-1234"}],
        "environments": {
            "prod": {"states": ["certified"], "minAgeDays": 7, "allowPastSunset": False},
            "dev": {"states": ["draft", "experimental", "certified", "deprecated"]},
        },
        "quotas": {"maxResourcesPerNamespace": 500, "maxVersionsPerNamespace": 5000},
        "rules": [
            {
                "id": "has-description",
                "expression": "has(document.spec.card.description) && size(document.spec.card.description) > 10",
                "effect": "hard",
                "message": "agents need a real description",
                "phases": ["publish", "promote", "resolve"],
            }
        ],
        "webhook": {
            "url": "https://admission.acme.internal/check",
            "timeoutMs": 2000,
            "failure": "closed",
            "phases": ["publish", "promote"],
        },
    },
}


def spec(**parts: Any) -> dict[str, Any]:
    return {"apiVersion": "agentreg.dev/v1", "kind": "Policy", "spec": parts}


def fields(raw: Any) -> list[str]:
    with pytest.raises(Invalid) as caught:
        parse_policy(raw)
    return [d.field for d in caught.value.details]


def candidate(**overrides: Any) -> Candidate:
    values: dict[str, Any] = {
        "kind": "agent",
        "namespace": "com.acme",
        "name": "bot",
        "version": "1.2.0",
        "state": State.CERTIFIED,
        "published_at": NOW - timedelta(days=30),
        "labels": {"team": "core"},
    }
    values.update(overrides)
    return Candidate(**values)


def decide(policy: Policy, c: Candidate | None = None, **options: Any) -> Decision:
    options.setdefault("phase", Phase.RESOLVE)
    options.setdefault("environment", None)
    options.setdefault("now", NOW)
    options.setdefault("exemptions", ())
    return admit(policy, c or candidate(), **options)


def result(decision: Decision, rule_id: str) -> Outcome:
    matches = [r.result for r in decision.rules if r.id == rule_id]
    assert matches, f"no rule {rule_id} in {[r.id for r in decision.rules]}"
    return matches[0]


# --- parsing ------------------------------------------------------------------------------------------------


def test_the_full_example_parses() -> None:
    policy = parse_policy(FULL)
    assert policy.refuse_breaking is True
    assert policy.allow[0].kind == "agent" and policy.deny[0].versions == "<2.0.0"
    assert policy.environments["prod"].states == (State.CERTIFIED,)
    assert policy.environments["prod"].min_age_days == 7
    assert policy.quotas.max_versions_per_namespace == 5000
    assert policy.rules[0].phases == (Phase.PUBLISH, Phase.PROMOTE, Phase.RESOLVE)
    assert policy.webhook is not None and policy.webhook.fail_open is False
    certified = {g.name: g for g in policy.gates.for_target(State.CERTIFIED)}
    assert "usage" not in certified
    assert isinstance(certified["approvals"], ApprovalsGate) and certified["approvals"].count == 2


def test_an_empty_spec_is_the_default_policy() -> None:
    assert parse_policy(spec()) == DEFAULT_POLICY


def test_defaults_of_rules_and_webhooks() -> None:
    policy = parse_policy(
        spec(rules=[{"id": "r", "expression": "true"}], webhook={"url": "https://hook.example/x"})
    )
    rule = policy.rules[0]
    assert (rule.effect, rule.phases) == (Effect.HARD, tuple(Phase))
    assert rule.message == "rule r is not satisfied"
    assert policy.webhook is not None
    assert (policy.webhook.timeout_ms, policy.webhook.fail_open) == (2000, False)
    assert policy.webhook.phases == (Phase.PUBLISH, Phase.PROMOTE)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["apiVersion"], "v1", "/apiVersion"),
        (["kind"], "Agent", "/kind"),
        (["spec", "bogus"], 1, "/spec/bogus"),
        (["spec", "lifecycle", "initialState"], "certified", "/spec/lifecycle/initialState"),
        (["spec", "lifecycle", "gates"], {"retired": {}}, "/spec/lifecycle/gates/retired"),
        (
            ["spec", "lifecycle", "gates"],
            {"certified": {"usage": {"minDays": -1}}},
            "/spec/lifecycle/gates/certified/usage/minDays",
        ),
        (
            ["spec", "lifecycle", "gates"],
            {"certified": {"approvals": {"roles": [[]]}}},
            "/spec/lifecycle/gates/certified/approvals/roles",
        ),
        (["spec", "compatibility", "breaking"], "ignore", "/spec/compatibility/breaking"),
        (["spec", "allow", 0, "name"], "com acme/*", "/spec/allow/0/name"),
        (["spec", "allow", 0, "kind"], "widget", "/spec/allow/0/kind"),
        (["spec", "allow", 0, "versions"], ">>1", "/spec/allow/0/versions"),
        (["spec", "allow", 0, "extra"], True, "/spec/allow/0/extra"),
        (["spec", "deny", 0, "versions"], "", "/spec/deny/0/versions"),
        (["spec", "deny", 0, "reason"], 42, "/spec/deny/0/reason"),
        (["spec", "environments", "prod", "states", 0], "retired", "/spec/environments/prod/states/0"),
        (["spec", "environments", "prod", "states", 0], "gold", "/spec/environments/prod/states/0"),
        (["spec", "environments", "prod", "states"], [], "/spec/environments/prod/states"),
        (["spec", "environments", "prod", "minAgeDays"], -1, "/spec/environments/prod/minAgeDays"),
        (["spec", "environments", "prod", "minAgeDays"], True, "/spec/environments/prod/minAgeDays"),
        (
            ["spec", "environments", "prod", "allowPastSunset"],
            "no",
            "/spec/environments/prod/allowPastSunset",
        ),
        (["spec", "environments", "Prod_1"], {"states": ["draft"]}, "/spec/environments/Prod_1"),
        (["spec", "quotas", "maxResourcesPerNamespace"], 0, "/spec/quotas/maxResourcesPerNamespace"),
        (["spec", "quotas", "maxVersionsPerNamespace"], 1.5, "/spec/quotas/maxVersionsPerNamespace"),
        (["spec", "rules", 0, "id"], "Has_Description", "/spec/rules/0/id"),
        (["spec", "rules", 0, "expression"], "size(", "/spec/rules/0/expression"),
        (["spec", "rules", 0, "expression"], "nosuch.field == 1", "/spec/rules/0/expression"),
        (["spec", "rules", 0, "expression"], "", "/spec/rules/0/expression"),
        (["spec", "rules", 0, "effect"], "fatal", "/spec/rules/0/effect"),
        (["spec", "rules", 0, "phases"], ["deploy"], "/spec/rules/0/phases/0"),
        (["spec", "rules", 0, "phases"], [], "/spec/rules/0/phases"),
        (["spec", "webhook", "url"], "ftp://hook.example/x", "/spec/webhook/url"),
        (["spec", "webhook", "url"], "https://user:pw@hook.example/x", "/spec/webhook/url"),
        (["spec", "webhook", "timeoutMs"], 0, "/spec/webhook/timeoutMs"),
        (["spec", "webhook", "timeoutMs"], 10_001, "/spec/webhook/timeoutMs"),
        (["spec", "webhook", "failure"], "maybe", "/spec/webhook/failure"),
        (["spec", "webhook", "phases"], ["resolve"], "/spec/webhook/phases/0"),
    ],
)
def test_each_field_error_is_named(path: list[Any], value: Any, field: str) -> None:
    document = copy.deepcopy(FULL)
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert field in fields(document)


def test_every_problem_is_reported_at_once() -> None:
    document = spec(
        environments={"prod": {"states": ["retired", "gold"]}},
        rules=[{"id": "a", "expression": "1 +"}, {"id": "a", "expression": "true"}],
        quotas={"maxResourcesPerNamespace": -1},
    )
    assert fields(document) == [
        "/spec/environments/prod/states/0",
        "/spec/environments/prod/states/1",
        "/spec/quotas/maxResourcesPerNamespace",
        "/spec/rules/0/expression",
        "/spec/rules/1/id",
    ]


def test_a_missing_spec_and_a_non_object_are_refused() -> None:
    assert fields({"apiVersion": "agentreg.dev/v1", "kind": "Policy"}) == ["/spec"]
    assert fields([1, 2]) == [""]
    assert fields(spec(environments=[])) == ["/spec/environments"]


def test_a_cel_syntax_error_says_where() -> None:
    with pytest.raises(Invalid) as caught:
        parse_policy(spec(rules=[{"id": "r", "expression": "version.state == "}]))
    assert "column" in caught.value.details[0].issue


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=20,
    )
)
def test_arbitrary_json_is_refused_only_with_invalid(raw: Any) -> None:
    problems = _problems(raw)
    assert all(isinstance(p.field, str) and p.issue for p in problems)


_SPEC_KEYS = ["lifecycle", "compatibility", "allow", "deny", "environments", "quotas", "rules", "webhook"]
_ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 20_000) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_SPEC_KEYS), _ANY, max_size=4))
def test_near_miss_documents_are_refused_only_with_invalid(parts: dict[str, Any]) -> None:
    assert all(p.field.startswith("/spec/") for p in _problems(spec(**parts)))


def _problems(raw: Any) -> tuple[FieldIssue, ...]:
    try:
        parse_policy(raw)
    except Invalid as exc:
        return exc.details
    return ()


_STATES = st.lists(
    st.sampled_from(["draft", "experimental", "certified", "deprecated"]), min_size=1, max_size=4, unique=True
)
_ENVIRONMENT = st.fixed_dictionaries(
    {"states": _STATES}, optional={"minAgeDays": st.integers(0, 30), "allowPastSunset": st.booleans()}
)
_DENY = st.fixed_dictionaries(
    {"name": st.sampled_from(["com.evil/*", "*", "a/b"])},
    optional={
        "versions": st.sampled_from(["<2.0.0", "^1", "1.x || >=3"]),
        "kind": st.sampled_from(["agent", "skills"]),
    },
)
_CERTIFIED = st.fixed_dictionaries({}, optional={"approvals": st.none(), "usage": st.just({"minDays": 3})})
_VALID_SPEC = st.fixed_dictionaries(
    {},
    optional={
        "compatibility": st.fixed_dictionaries({"breaking": st.sampled_from(["warn", "refuse"])}),
        "environments": st.dictionaries(
            st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), _ENVIRONMENT, max_size=3
        ),
        "quotas": st.fixed_dictionaries({}, optional={"maxResourcesPerNamespace": st.integers(1, 10**6)}),
        "deny": st.lists(_DENY, max_size=3),
        "lifecycle": st.fixed_dictionaries(
            {"gates": st.fixed_dictionaries({}, optional={"certified": _CERTIFIED})}
        ),
    },
)


@given(_VALID_SPEC)
def test_rendering_the_effective_policy_parses_back_to_it(parts: dict[str, Any]) -> None:
    policy = parse_policy(spec(**parts))
    assert parse_policy(render_policy(policy)) == policy


def test_rendering_keeps_a_removed_default_gate_removed() -> None:
    policy = parse_policy(spec(lifecycle={"gates": {"certified": {"usage": None}}}))
    rendered = render_policy(policy)
    assert rendered["spec"]["lifecycle"]["gates"]["certified"]["usage"] is None
    again = parse_policy(rendered)
    assert not any(isinstance(g, UsageGate) for g in again.gates.for_target(State.CERTIFIED))


def test_exemption_resources_and_rule_ids() -> None:
    assert parse_exemption_resource("agents/com.acme/bot@^1") == "agent/com.acme/bot@^1"
    assert parse_exemption_resource("MCPServer/com.acme/gh") == "mcp-server/com.acme/gh"
    for bad in ("com.acme/bot", "agent/com.acme/bot@>>1", "widget/a/b", "agent/a/b@", 5):
        with pytest.raises(Invalid) as caught:
            parse_exemption_resource(bad)
        assert caught.value.details[0].field == "/resource"
    assert parse_exempted_rules(["cel.*", "deny.0", "cel.*"]) == ("cel.*", "deny.0")
    with pytest.raises(Invalid) as refused:
        parse_exempted_rules(["lifecycle.blocked", "bad id"])
    assert [d.field for d in refused.value.details] == ["/rules/0", "/rules/1"]


# --- admission ------------------------------------------------------------------------------------------------


def test_the_default_policy_admits_a_healthy_version() -> None:
    decision = decide(DEFAULT_POLICY)
    assert decision.allowed
    assert [r.id for r in decision.rules] == ["lifecycle.blocked", "lifecycle.retired"]
    assert decision.valid_until is None


def test_blocked_is_refused_everywhere_and_never_exempted() -> None:
    exemption = Exemption("e1", "agent/com.acme/bot", ("*",), "incident", "root", NOW + timedelta(days=1))
    for phase in Phase:
        decision = decide(DEFAULT_POLICY, candidate(blocked=True), phase=phase, exemptions=[exemption])
        assert not decision.allowed
        assert result(decision, "lifecycle.blocked") is Outcome.FAIL
        assert decision.exemptions == ()


def test_retired_is_refused_at_resolution_only() -> None:
    retired = candidate(state=State.RETIRED)
    assert not decide(DEFAULT_POLICY, retired).allowed
    assert decide(DEFAULT_POLICY, retired, phase=Phase.PROMOTE).allowed
    assert "lifecycle.retired" not in [
        r.id for r in decide(DEFAULT_POLICY, retired, phase=Phase.PUBLISH).rules
    ]


@pytest.mark.parametrize(
    ("namespace", "version", "kind", "denied"),
    [
        ("com.evil", "1.9.9", "agent", True),
        ("com.evil", "2.0.0", "agent", False),
        ("com.evil", "2.0.0-rc.1", "agent", True),  # policy ranges include pre-releases
        ("com.evil", "1.0.0", "skill", False),  # the rule names a kind
        ("com.evil", "2025-01-01", "agent", True),  # not SemVer: a range deny fails safe
        ("com.evilcorp", "1.0.0", "agent", False),
        ("com.good", "1.0.0", "agent", False),
    ],
)
def test_deny_by_name_kind_and_range(namespace: str, version: str, kind: str, denied: bool) -> None:
    policy = parse_policy(
        spec(deny=[{"name": "com.evil/*", "kind": "agent", "versions": "<2.0.0", "reason": "CVE-1"}])
    )
    decision = decide(policy, candidate(namespace=namespace, version=version, kind=kind))
    assert decision.allowed is not denied
    if denied:
        assert result(decision, "deny.0") is Outcome.FAIL
        assert [r.message for r in decision.rules if r.id == "deny.0"] == ["CVE-1"]


def test_allow_applies_only_when_the_list_is_not_empty() -> None:
    assert "allow" not in [r.id for r in decide(DEFAULT_POLICY).rules]
    policy = parse_policy(spec(allow=[{"name": "com.acme/*", "versions": ">=1.0.0"}]))
    assert result(decide(policy), "allow") is Outcome.PASS
    assert result(decide(policy, candidate(version="0.9.0")), "allow") is Outcome.FAIL
    assert not decide(policy, candidate(namespace="org.other")).allowed
    assert not decide(policy, candidate(version="2025-01-01")).allowed  # not SemVer: no range allows it


ENVIRONMENTS = spec(
    environments={
        "prod": {"states": ["certified", "deprecated"], "minAgeDays": 7},
        "dev": {"states": ["draft", "experimental", "certified", "deprecated"], "allowPastSunset": True},
    }
)


def test_environment_states() -> None:
    policy = parse_policy(ENVIRONMENTS)
    assert result(decide(policy, environment="prod"), "environment.prod.state") is Outcome.PASS
    draft = decide(policy, candidate(state=State.DRAFT), environment="prod")
    assert not draft.allowed and result(draft, "environment.prod.state") is Outcome.FAIL
    assert decide(policy, candidate(state=State.DRAFT), environment="dev").allowed


def test_minimum_age_and_when_it_will_be_reached() -> None:
    policy = parse_policy(ENVIRONMENTS)
    young = candidate(published_at=NOW - timedelta(days=2))
    decision = decide(policy, young, environment="prod")
    assert not decision.allowed and result(decision, "environment.prod.minAge") is Outcome.FAIL
    assert decision.valid_until == NOW + timedelta(days=5)
    later = decide(policy, young, environment="prod", now=NOW + timedelta(days=5))
    assert later.allowed and later.valid_until is None


def test_sunset_refuses_past_it_unless_the_environment_allows() -> None:
    policy = parse_policy(ENVIRONMENTS)
    sunset = NOW + timedelta(days=3)
    deprecated = candidate(state=State.DEPRECATED, sunset=sunset)
    before = decide(policy, deprecated, environment="prod")
    assert before.allowed and before.valid_until == sunset
    after = decide(policy, deprecated, environment="prod", now=sunset)
    assert not after.allowed and result(after, "environment.prod.sunset") is Outcome.FAIL
    assert decide(policy, deprecated, environment="dev", now=sunset + timedelta(days=1)).allowed


def test_an_unknown_environment() -> None:
    known = decide(parse_policy(ENVIRONMENTS), environment="staging")
    assert not known.allowed
    message = next(r.message for r in known.rules if r.id == "environment")
    assert "'staging'" in message and "dev, prod" in message
    none_defined = decide(DEFAULT_POLICY, environment="staging")
    assert none_defined.allowed and result(none_defined, "environment") is Outcome.PASS
    assert not decide(DEFAULT_POLICY, candidate(state=State.RETIRED), environment="staging").allowed


def cel(expression: str, effect: str = "hard", phases: list[str] | None = None) -> Policy:
    rule: dict[str, Any] = {"id": "r", "expression": expression, "effect": effect, "message": "says no"}
    if phases is not None:
        rule["phases"] = phases
    return parse_policy(spec(rules=[rule]))


def test_cel_hard_soft_and_phases() -> None:
    labelled = "resource.labels.team == 'core'"
    assert result(decide(cel(labelled)), "cel.r") is Outcome.PASS
    hard = decide(cel(labelled), candidate(labels={"team": "other"}))
    assert not hard.allowed and result(hard, "cel.r") is Outcome.FAIL
    soft = decide(cel(labelled, "soft"), candidate(labels={"team": "other"}))
    assert soft.allowed and result(soft, "cel.r") is Outcome.WARN
    publish_only = cel("false", phases=["publish"])
    assert decide(publish_only).allowed
    assert not decide(publish_only, phase=Phase.PUBLISH).allowed


def test_cel_sees_every_variable() -> None:
    expression = (
        "document.spec.card.name == 'Bot' && version.version == '1.2.0' && version.state == 'certified'"
        " && version.ageDays > 29.0 && !version.blocked && version.sunset == null && phase == 'resolve'"
        " && environment == '' && now > version.publishedAt && resource.kind == 'agent'"
        " && evidence.usage.requests == 5 && evidence.scans.all(s, s.critical == 0) && evidence.approvals == 1"
    )
    evidence = {
        "evaluations": [],
        "scans": [{"scanner": "trivy", "critical": 0, "high": 1}],
        "usage": {"requests": 5, "errors": 0, "errorRate": 0.0, "callers": 1, "p95Ms": 10.0},
        "approvals": 1,
    }
    c = candidate(document={"spec": {"card": {"name": "Bot"}}}, evidence=evidence)
    decision = decide(cel(expression), c)
    assert decision.allowed, decision.rules


def test_a_cel_evaluation_error_violates_the_rule_and_says_why() -> None:
    decision = decide(cel("document.spec.card.description.size() > 10"), candidate(document={"spec": {}}))
    assert not decision.allowed
    message = next(r.message for r in decision.rules if r.id == "cel.r")
    assert message.startswith("says no (could not evaluate:") and "card" in message
    not_boolean = decide(cel("version.version"))
    assert not not_boolean.allowed and "not a boolean" in not_boolean.rules[-1].message


def test_a_cel_rule_reading_the_time_expires_within_a_minute() -> None:
    assert decide(cel("now > version.publishedAt")).valid_until == NOW + timedelta(seconds=60)
    assert decide(cel("version.ageDays > 1.0")).valid_until == NOW + timedelta(seconds=60)
    assert decide(cel("version.state == 'certified'")).valid_until is None


def test_an_active_exemption_turns_a_failure_into_exempted() -> None:
    policy = parse_policy(spec(deny=[{"name": "com.acme/*"}], rules=[{"id": "r", "expression": "false"}]))
    expires = NOW + timedelta(days=10)
    exemption = Exemption("e1", "agent/com.acme/bot@^1", ("deny.*", "cel.r"), "migration", "alice", expires)
    decision = decide(policy, exemptions=[exemption])
    assert decision.allowed
    assert result(decision, "deny.0") is Outcome.EXEMPTED and result(decision, "cel.r") is Outcome.EXEMPTED
    assert decision.exemptions == (exemption,)
    assert decision.valid_until == expires


@pytest.mark.parametrize(
    "exemption",
    [
        Exemption("e", "agent/com.acme/bot", ("*",), "x", "a", NOW),  # expired: expiry is exclusive
        Exemption("e", "agent/com.acme/bot", ("*",), "x", "a", NOW - timedelta(seconds=1)),
        Exemption("e", "agent/com.acme/bot@^2", ("*",), "x", "a", NOW + timedelta(days=1)),  # other versions
        Exemption("e", "skill/com.acme/bot", ("*",), "x", "a", NOW + timedelta(days=1)),  # other kind
        Exemption("e", "agent/com.acme/bot", ("cel.other",), "x", "a", NOW + timedelta(days=1)),  # other rule
    ],
)
def test_an_exemption_that_does_not_cover_changes_nothing(exemption: Exemption) -> None:
    decision = decide(parse_policy(spec(deny=[{"name": "com.acme/*"}])), exemptions=[exemption])
    assert not decision.allowed and decision.exemptions == ()
