"""The policy document: parsing (``parse``) and rendering with defaults (``render``). Pure.

Every problem is collected and named by its JSON pointer (unknown fields included); every CEL expression
is compiled here, so a rule that cannot run is refused when the policy is put, not when it is applied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from agentreg.domain.cel import MAX_EXPRESSION, CelError, compile_expression
from agentreg.domain.errors import FieldIssue, Invalid
from agentreg.domain.gates import DEFAULT_GATES, GateSet, gate_config, parse_gates
from agentreg.domain.kinds import parse_kind
from agentreg.domain.lifecycle import GATED, INITIAL, State
from agentreg.domain.names import ENVIRONMENT_RE, check_name, check_namespace
from agentreg.domain.policy import (
    BLOCKED,
    CelRule,
    Effect,
    EnvironmentRule,
    NameRule,
    Phase,
    Policy,
    Quotas,
    Webhook,
)
from agentreg.domain.semver import RangeError, parse_range

# --- parsing ------------------------------------------------------------------------------------------------

API_VERSION = "agentreg.dev/v1"
KIND = "Policy"
RULE_ID_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}", re.ASCII)
# A glob over "namespace/name": the characters names use, plus * and ?.
PATTERN_RE = re.compile(r"[A-Za-z0-9._*?/-]{1,255}", re.ASCII)
EXEMPTED_RULE_RE = re.compile(r"[A-Za-z0-9.*?_-]{1,128}", re.ASCII)
MAX_ENTRIES = 1000
MAX_TEXT = 500
MAX_MIN_AGE_DAYS = 3650
MAX_QUOTA = 10**9
WEBHOOK_PHASES = (Phase.PUBLISH, Phase.PROMOTE)
DEFAULT_DOCUMENT: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND, "spec": {}}


class _Problems:
    """Collects every problem of a document, so one answer names them all."""

    def __init__(self) -> None:
        self.items: list[FieldIssue] = []

    def add(self, field: str, issue: str) -> None:
        self.items.append(FieldIssue(field, issue))

    def object(self, value: Any, at: str, keys: Sequence[str]) -> dict[str, Any] | None:
        """``value`` if it is an object with only ``keys`` (an unknown key is a problem; the rest is kept)."""
        if not isinstance(value, dict):
            self.add(at, "must be an object")
            return None
        for key in value:
            if key not in keys:
                self.add(f"{at}/{_escape(str(key))}", f"unknown field; known: {', '.join(keys)}")
        return value

    def text(self, value: Any, at: str, *, limit: int = MAX_TEXT, required: bool = False) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.add(at, "is required: a non-empty string" if required else "must be a string")
            return ""
        if len(value) > limit:
            self.add(at, f"must be at most {limit} characters")
        return value

    def choice(self, value: Any, at: str, choices: Sequence[str], default: str) -> str:
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            self.add(at, f"must be one of {', '.join(choices)}")
            return default
        return value

    def phases(
        self, value: Any, at: str, allowed: Sequence[Phase], default: tuple[Phase, ...]
    ) -> tuple[Phase, ...]:
        if value is None:
            return default
        names = [p.value for p in allowed]
        if not isinstance(value, list) or not value:
            self.add(at, f"must be a non-empty list of {', '.join(names)}")
            return default
        phases: list[Phase] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or item not in names:
                self.add(f"{at}/{i}", f"must be one of {', '.join(names)}")
            elif Phase(item) in phases:
                self.add(f"{at}/{i}", f"{item} is listed twice")
            else:
                phases.append(Phase(item))
        return tuple(phases) or default

    def entries(self, value: Any, at: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(at, "must be a list")
            return []
        if len(value) > MAX_ENTRIES:
            self.add(at, f"must have at most {MAX_ENTRIES} entries")
            return []
        return value


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def parse(raw: Any) -> Policy:
    """A policy document as a ``Policy``; raises Invalid naming every problem (unknown fields included)."""
    p = _Problems()
    document = p.object(raw, "", ("apiVersion", "kind", "spec"))
    if document is None:
        raise Invalid.of(p.items)
    if document.get("apiVersion") != API_VERSION:
        p.add("/apiVersion", f"must be {API_VERSION!r}")
    if document.get("kind") != KIND:
        p.add("/kind", f"must be {KIND!r}")
    spec_keys = ("lifecycle", "compatibility", "allow", "deny", "environments", "quotas", "rules", "webhook")
    spec = p.object(document.get("spec"), "/spec", spec_keys) if "spec" in document else None
    if "spec" not in document:
        p.add("/spec", "is required (an empty object means the defaults)")
    if spec is None:
        raise Invalid.of(p.items)
    initial, gates = _lifecycle(p, spec.get("lifecycle"))
    policy = Policy(
        initial_state=initial,
        gates=gates,
        refuse_breaking=_compatibility(p, spec.get("compatibility")),
        allow=_name_rules(p, spec.get("allow"), "/spec/allow"),
        deny=_name_rules(p, spec.get("deny"), "/spec/deny"),
        environments=_environments(p, spec.get("environments")),
        quotas=_quotas(p, spec.get("quotas")),
        rules=_cel_rules(p, spec.get("rules")),
        webhook=_webhook(p, spec.get("webhook")),
    )
    if p.items:
        raise Invalid.of(p.items)
    return policy


def _lifecycle(p: _Problems, value: Any) -> tuple[State, GateSet]:
    at = "/spec/lifecycle"
    if value is None or p.object(value, at, ("initialState", "gates")) is None:
        return State.DRAFT, DEFAULT_GATES
    initial = p.choice(value.get("initialState"), f"{at}/initialState", [s.value for s in INITIAL], "draft")
    try:
        gates = parse_gates(value.get("gates"), f"{at}/gates")
    except Invalid as exc:
        p.items.extend(exc.details)
        gates = DEFAULT_GATES
    return State(initial), gates


def _compatibility(p: _Problems, value: Any) -> bool:
    at = "/spec/compatibility"
    if value is None or p.object(value, at, ("breaking",)) is None:
        return False
    return p.choice(value.get("breaking"), f"{at}/breaking", ["warn", "refuse"], "warn") == "refuse"


def _name_rules(p: _Problems, value: Any, base: str) -> tuple[NameRule, ...]:
    rules: list[NameRule] = []
    for i, entry in enumerate(p.entries(value, base)):
        at = f"{base}/{i}"
        if p.object(entry, at, ("name", "kind", "versions", "reason")) is None:
            continue
        pattern = entry.get("name")
        if not isinstance(pattern, str) or not PATTERN_RE.fullmatch(pattern):
            p.add(
                f"{at}/name",
                "is required: a namespace/name glob such as 'com.acme/*' (letters, digits, . _ - / * ?)",
            )
            continue
        kind = None
        if entry.get("kind") is not None:
            kind = _kind(p, entry["kind"], f"{at}/kind")
        versions = None
        if entry.get("versions") is not None:
            versions = _range_text(p, entry["versions"], f"{at}/versions")
        rules.append(NameRule(pattern, kind, versions, p.text(entry.get("reason"), f"{at}/reason")))
    return tuple(rules)


def _kind(p: _Problems, value: Any, at: str) -> str | None:
    if not isinstance(value, str):
        p.add(at, "must be a kind: agent, mcp-server, skill or model")
        return None
    try:
        return parse_kind(value, at).value
    except Invalid as exc:
        p.items.extend(exc.details)
        return None


def _range_text(p: _Problems, value: Any, at: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        p.add(at, "must be a SemVer range such as '>=1.0.0 <2.0.0' or '^1.2'")
        return None
    try:
        parse_range(value)
    except RangeError as exc:
        p.add(at, f"not a SemVer range: {exc}")
        return None
    return value


def _environments(p: _Problems, value: Any) -> dict[str, EnvironmentRule]:
    base = "/spec/environments"
    if value is None:
        return {}
    if not isinstance(value, dict):
        p.add(base, "must be an object keyed by environment name")
        return {}
    if len(value) > 100:
        p.add(base, "must name at most 100 environments")
        return {}
    environments: dict[str, EnvironmentRule] = {}
    for name, config in value.items():
        at = f"{base}/{_escape(str(name))}"
        if not isinstance(name, str) or not ENVIRONMENT_RE.fullmatch(name):
            p.add(at, "environment names are lowercase letters, digits and '-' (at most 63, like 'prod')")
            continue
        if p.object(config, at, ("states", "minAgeDays", "allowPastSunset")) is None:
            continue
        states = _states(p, config.get("states"), f"{at}/states")
        age = config.get("minAgeDays", 0)
        if isinstance(age, bool) or not isinstance(age, int | float) or not 0 <= age <= MAX_MIN_AGE_DAYS:
            p.add(f"{at}/minAgeDays", f"must be a number of days from 0 to {MAX_MIN_AGE_DAYS}")
            age = 0
        past_sunset = config.get("allowPastSunset", False)
        if not isinstance(past_sunset, bool):
            p.add(f"{at}/allowPastSunset", "must be true or false")
            past_sunset = False
        environments[name] = EnvironmentRule(states, float(age) if age else 0, past_sunset)
    return environments


def _states(p: _Problems, value: Any, at: str) -> tuple[State, ...]:
    admitted = [s.value for s in State if s is not State.RETIRED]
    if not isinstance(value, list) or not value:
        p.add(at, f"is required: a non-empty list of {', '.join(admitted)}")
        return ()
    states: list[State] = []
    for i, item in enumerate(value):
        if item == State.RETIRED.value:
            p.add(f"{at}/{i}", "retired versions are never admitted anywhere")
        elif not isinstance(item, str) or item not in admitted:
            p.add(f"{at}/{i}", f"must be one of {', '.join(admitted)}")
        elif State(item) in states:
            p.add(f"{at}/{i}", f"{item} is listed twice")
        else:
            states.append(State(item))
    return tuple(states)


def _quotas(p: _Problems, value: Any) -> Quotas:
    at = "/spec/quotas"
    keys = ("maxResourcesPerNamespace", "maxVersionsPerNamespace")
    if value is None or p.object(value, at, keys) is None:
        return Quotas()
    limits: list[int | None] = []
    for key in keys:
        limit = value.get(key)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_QUOTA
        ):
            p.add(f"{at}/{key}", f"must be a whole number from 1 to {MAX_QUOTA} (or null: no limit)")
            limit = None
        limits.append(limit)
    return Quotas(*limits)


def _cel_rules(p: _Problems, value: Any) -> tuple[CelRule, ...]:
    base = "/spec/rules"
    rules: list[CelRule] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(p.entries(value, base)):
        at = f"{base}/{i}"
        if p.object(entry, at, ("id", "expression", "effect", "message", "phases")) is None:
            continue
        rule_id = entry.get("id")
        if not isinstance(rule_id, str) or not RULE_ID_RE.fullmatch(rule_id):
            p.add(
                f"{at}/id",
                "is required: lowercase letters, digits, '.' and '-' (at most 63, like 'has-description')",
            )
            rule_id = None
        elif rule_id in seen:
            p.add(f"{at}/id", f"duplicate rule id {rule_id!r} (also {base}/{seen[rule_id]})")
        else:
            seen[rule_id] = i
        expression = p.text(entry.get("expression"), f"{at}/expression", limit=MAX_EXPRESSION, required=True)
        if expression:
            try:
                compile_expression(expression)
            except CelError as exc:
                p.add(f"{at}/expression", str(exc))
        effect = p.choice(entry.get("effect"), f"{at}/effect", [e.value for e in Effect], Effect.HARD.value)
        message = p.text(entry.get("message"), f"{at}/message")
        phases = p.phases(entry.get("phases"), f"{at}/phases", tuple(Phase), tuple(Phase))
        if rule_id is not None and expression:
            rules.append(
                CelRule(
                    rule_id, expression, Effect(effect), message or f"rule {rule_id} is not satisfied", phases
                )
            )
    return tuple(rules)


def _webhook(p: _Problems, value: Any) -> Webhook | None:
    at = "/spec/webhook"
    if value is None or p.object(value, at, ("url", "timeoutMs", "failure", "phases")) is None:
        return None
    url = value.get("url")
    problem = _url_problem(url)
    if problem:
        p.add(f"{at}/url", problem)
    timeout = value.get("timeoutMs", 2000)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 10_000:
        p.add(f"{at}/timeoutMs", "must be a whole number of milliseconds from 1 to 10000")
        timeout = 2000
    failure = p.choice(value.get("failure"), f"{at}/failure", ["open", "closed"], "closed")
    phases = p.phases(value.get("phases"), f"{at}/phases", WEBHOOK_PHASES, WEBHOOK_PHASES)
    return Webhook(str(url), timeout, failure == "open", phases) if not problem else None


def _url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return "is required: the https URL of the admission webhook"
    if len(url) > 2048:
        return "must be at most 2048 characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https URL with a host (http only for hosts the fetch allow-list names)"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (anyone who reads the policy would see them)"
    if parts.fragment or any(c.isspace() for c in url):
        return "must not have a fragment or whitespace"
    return None


def parse_exemption_resource(value: Any, at: str = "/resource") -> str:
    """``kind/namespace/name`` with an optional ``@range``, normalized (the kind's ref spelling)."""
    if not isinstance(value, str) or not value:
        raise Invalid.at(
            at, "is required: kind/namespace/name, optionally @range (e.g. agent/com.acme/bot@^1)"
        )
    target, sep, versions = value.partition("@")
    parts = target.split("/")
    if len(parts) != 3:
        raise Invalid.at(at, "must look like kind/namespace/name, optionally @range")
    kind = parse_kind(parts[0], at).value
    check_namespace(parts[1], at)
    check_name(parts[1], parts[2], at)
    if sep:
        p = _Problems()
        if _range_text(p, versions, at) is None:
            raise Invalid.of(p.items)
    return f"{kind}/{parts[1]}/{parts[2]}" + (f"@{versions}" if sep else "")


def parse_exempted_rules(value: Any, at: str = "/rules") -> tuple[str, ...]:
    """Rule ids (``deny.0``, ``cel.has-description``, ``environment.prod.minAge``) or globs (``cel.*``, ``*``)."""
    if not isinstance(value, list) or not value or len(value) > 100:
        raise Invalid.at(at, "is required: a list of 1 to 100 rule ids such as 'cel.has-description' or '*'")
    p = _Problems()
    for i, item in enumerate(value):
        if not isinstance(item, str) or not EXEMPTED_RULE_RE.fullmatch(item):
            p.add(
                f"{at}/{i}",
                "must be a rule id such as 'deny.0', 'environment.prod.minAge', 'cel.my-rule' or a glob",
            )
        elif item == BLOCKED:
            p.add(f"{at}/{i}", "a blocked version cannot be exempted: unblock it")
    if p.items:
        raise Invalid.of(p.items)
    return tuple(dict.fromkeys(value))


# --- rendering ------------------------------------------------------------------------------------------------


def render(policy: Policy) -> dict[str, Any]:
    """The policy in effect as a document, every default filled in (parsing it gives the same policy)."""
    gates: dict[str, Any] = {}
    for tier in GATED:
        configured = {g.name: gate_config(g) for g in policy.gates.for_target(tier)}
        removed = {g.name: None for g in DEFAULT_GATES.for_target(tier) if g.name not in configured}
        gates[tier.value] = {**configured, **removed}
    webhook = policy.webhook
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "spec": {
            "lifecycle": {"initialState": policy.initial_state.value, "gates": gates},
            "compatibility": {"breaking": "refuse" if policy.refuse_breaking else "warn"},
            "allow": [_name_rule_json(r) for r in policy.allow],
            "deny": [_name_rule_json(r) for r in policy.deny],
            "environments": {
                name: {
                    "states": [s.value for s in env.states],
                    "minAgeDays": env.min_age_days,
                    "allowPastSunset": env.allow_past_sunset,
                }
                for name, env in policy.environments.items()
            },
            "quotas": {
                "maxResourcesPerNamespace": policy.quotas.max_resources_per_namespace,
                "maxVersionsPerNamespace": policy.quotas.max_versions_per_namespace,
            },
            "rules": [
                {
                    "id": r.id,
                    "expression": r.expression,
                    "effect": r.effect.value,
                    "message": r.message,
                    "phases": [ph.value for ph in r.phases],
                }
                for r in policy.rules
            ],
            "webhook": None
            if webhook is None
            else {
                "url": webhook.url,
                "timeoutMs": webhook.timeout_ms,
                "failure": "open" if webhook.fail_open else "closed",
                "phases": [ph.value for ph in webhook.phases],
            },
        },
    }


def _name_rule_json(rule: NameRule) -> dict[str, Any]:
    return {"name": rule.pattern, "kind": rule.kind, "versions": rule.versions, "reason": rule.reason}
