"""CEL rules: compiling (once, with readable errors), the variables they may name, evaluating them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from celpy import celtypes

from agentreg.domain.cel import (
    MAX_EXPRESSION,
    CelError,
    activation,
    compile_expression,
    evaluate,
    needs_document,
    needs_evidence,
    to_cel,
)
from agentreg.domain.lifecycle import State
from agentreg.domain.policy import Candidate, CelRule, Effect, Phase, Policy

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def run(expression: str, **variables: object) -> tuple[bool, str | None]:
    return evaluate(compile_expression(expression), {k: to_cel(v) for k, v in variables.items()})


@pytest.mark.parametrize(
    ("expression", "issue"),
    [
        ("1 +", "syntax error at line 1, column 3"),
        ("(", "syntax error"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x > 1", "unknown variable 'x'"),
        ("document.a && secrets.token == ''", "unknown variable 'secrets'"),
        ("a" * (MAX_EXPRESSION + 1), f"at most {MAX_EXPRESSION} characters"),
    ],
)
def test_bad_expressions_are_refused_with_a_reason(expression: str, issue: str) -> None:
    with pytest.raises(CelError) as caught:
        compile_expression(expression)
    assert issue in str(caught.value)


@pytest.mark.parametrize(
    "expression", ["(" * 2000 + "true" + ")" * 2000, "true" + " && true" * 350, "!" * 3000 + "true"]
)
def test_deeply_nested_expressions_are_refused_when_put(expression: str) -> None:
    with pytest.raises(CelError) as caught:
        compile_expression(expression)
    assert "nested too deeply" in str(caught.value)


def test_the_deepest_accepted_expression_evaluates() -> None:
    expression = "true" + " && true" * 200
    assert evaluate(compile_expression(expression), {}) == (True, None)


def test_macros_nest_at_most_two_deep() -> None:
    two = "document.a.all(x, document.b.exists(y, y == x))"
    assert compile_expression(two).names == {"document"}
    # a chain is fine: each macro runs over the list once
    assert compile_expression("document.a.filter(x, x > 1).map(x, x * 2).all(x, x > 0)")
    with pytest.raises(CelError, match="nests more than 2 macros"):
        compile_expression("document.a.all(x, document.b.all(y, document.c.exists(z, z == x + y)))")


def test_macro_variables_are_not_unknown_variables() -> None:
    program = compile_expression("evidence.scans.all(s, s.critical == 0) && [1, 2].exists(n, n > 1)")
    assert program.names == {"evidence"}


def test_compiled_programs_are_cached_by_text() -> None:
    assert compile_expression("phase == 'publish'") is compile_expression("phase == 'publish'")


def test_what_a_program_reads() -> None:
    assert compile_expression("has(document.spec.card)").names == {"document"}
    assert compile_expression("now > version.publishedAt").reads_time
    assert compile_expression("version.ageDays >= 7.0").reads_time
    assert not compile_expression("version.state == 'certified'").reads_time


def test_true_false_and_errors() -> None:
    assert run("version.state == 'certified'", version={"state": "certified"}) == (True, None)
    assert run("version.state == 'certified'", version={"state": "draft"}) == (False, None)
    satisfied, error = run("document.spec.x > 1", document={"spec": {}})
    assert not satisfied and error is not None and "'x'" in error
    satisfied, error = run("phase", phase="publish")
    assert not satisfied and error is not None and "not a boolean" in error
    satisfied, error = run("1 / 0 == 1")
    assert not satisfied and error is not None


def test_an_undeclared_variable_error_stays_short() -> None:
    # ``environment`` is a rule variable, so it compiles; left out of the activation, celpy's message would
    # otherwise carry the whole activation.
    satisfied, error = run("environment == 'prod'", document={"big": "x" * 10_000})
    assert not satisfied and error is not None
    assert len(error) <= 300 and "big" not in error


def test_timestamps_and_large_numbers() -> None:
    assert run("now > version.publishedAt", now=NOW, version={"publishedAt": NOW - timedelta(days=1)})[0]
    assert run("version.sunset == null", version={"sunset": None})[0]
    assert run("document.n > 1.0", document={"n": 2**70})[0]
    assert isinstance(to_cel(2**70), celtypes.DoubleType)


def _candidate(**extra: object) -> Candidate:
    base: dict[str, object] = {
        "kind": "agent",
        "namespace": "com.acme",
        "name": "bot",
        "version": "1.0.0",
        "state": State.EXPERIMENTAL,
        "published_at": NOW - timedelta(days=2),
        "labels": {},
    }
    base.update(extra)
    return Candidate(**base)  # type: ignore[arg-type]


def test_the_activation_has_every_variable() -> None:
    variables = activation(_candidate(), environment=None, phase=Phase.PROMOTE, now=NOW)
    assert set(variables) == {"document", "resource", "version", "evidence", "environment", "phase", "now"}
    assert evaluate(
        compile_expression("version.ageDays == 2.0 && environment == '' && phase == 'promote'"), variables
    )[0]
    # Evidence not loaded: empty lists and zeros, so "no critical finding" style rules still evaluate.
    assert evaluate(
        compile_expression("size(evidence.scans) == 0 && evidence.usage.requests == 0"), variables
    )[0]


def rule(expression: str, *phases: Phase) -> CelRule:
    return CelRule("r", expression, Effect.HARD, "no", phases or tuple(Phase))


def test_callers_load_the_document_and_evidence_only_when_a_rule_of_the_phase_reads_them() -> None:
    policy = Policy(
        rules=(rule("has(document.spec)", Phase.PUBLISH), rule("evidence.approvals > 0", Phase.PROMOTE))
    )
    assert needs_document(policy, Phase.PUBLISH) and not needs_document(policy, Phase.RESOLVE)
    assert needs_evidence(policy, Phase.PROMOTE) and not needs_evidence(policy, Phase.PUBLISH)
    assert not needs_document(Policy(), Phase.PUBLISH)
