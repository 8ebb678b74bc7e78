"""CEL rules of a tenant's policy: compiling (once per expression), the variables they see, evaluating. Pure.

A rule sees ``document`` (the version envelope, when loaded), ``resource`` {kind, namespace, name, labels},
``version`` {version, state, publishedAt, ageDays, blocked, sunset}, ``evidence`` {evaluations, scans, usage,
approvals}, ``environment`` ("" when none), ``phase`` and ``now``. It must evaluate to true; false, another
value or an evaluation error (a missing field, a type mismatch) means the rule is violated.

Loading the document and the evidence costs queries, so callers ask ``needs_document`` / ``needs_evidence``
first; both read which variables the compiled expressions name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import celpy
import lark
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

if TYPE_CHECKING:
    from agentreg.domain.policy import Candidate, Phase, Policy

VARIABLES = frozenset({"document", "resource", "version", "evidence", "environment", "phase", "now"})
MAX_EXPRESSION = 4096
# The interpreter recurses once or more per tree level: deeper trees would fail on every evaluation.
MAX_DEPTH = 250
# Rules run on every resolution: nested comprehensions over a document's lists grow as n^k.
MAX_MACRO_NESTING = 2
# Macros whose first argument binds a name inside the rest: ``scans.all(s, s.critical == 0)``.
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_INT64 = 2**63
# ``evidence`` when the caller did not load it (services.evidence.evidence_summary builds the real one).
NO_EVIDENCE: Mapping[str, Any] = {
    "evaluations": [],
    "scans": [],
    "usage": {"requests": 0, "errors": 0, "errorRate": 0.0, "callers": 0, "p95Ms": 0.0},
    "approvals": 0,
}
_ERROR_LIMIT = 300

# One environment for every program: creating one parses the grammar (and raises the recursion limit).
_ENVIRONMENT = celpy.Environment()


class CelError(ValueError):
    """The expression does not compile, or names a variable rules do not have."""


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled rule expression and what it reads."""

    expression: str
    runner: celpy.Runner
    names: frozenset[str]  # the rule variables it names
    reads_time: bool  # names ``now`` or ``ageDays``: its answer may change as time passes


@lru_cache(maxsize=2048)
def compile_expression(expression: str) -> Program:
    """Compile ``expression`` (cached by text); raises CelError with a readable message."""
    if len(expression) > MAX_EXPRESSION:
        raise CelError(f"must be at most {MAX_EXPRESSION} characters")
    if not expression.strip():
        raise CelError("must not be empty")
    try:
        ast = _ENVIRONMENT.compile(expression)
    except CELParseError as exc:
        where = f"line {exc.line}, column {exc.column}" if exc.line is not None else "somewhere"
        raise CelError(f"not valid CEL: syntax error at {where}") from None
    except (RecursionError, lark.exceptions.LarkError, ValueError, TypeError) as exc:
        raise CelError(f"not valid CEL ({type(exc).__name__})") from None
    names, bound, tokens, depth, macros = _identifiers(ast)
    if depth > MAX_DEPTH:
        raise CelError("is nested too deeply: split it into several rules")
    if macros > MAX_MACRO_NESTING:
        raise CelError(
            f"nests more than {MAX_MACRO_NESTING} macros (all, exists, map, filter): "
            "each level multiplies the work per element"
        )
    unknown = sorted(names - VARIABLES - bound)
    if unknown:
        raise CelError(f"unknown variable {unknown[0]!r}; rules can read {', '.join(sorted(VARIABLES))}")
    try:
        runner = _ENVIRONMENT.program(ast)
    except (RecursionError, lark.exceptions.LarkError, ValueError, TypeError) as exc:
        raise CelError(f"not valid CEL ({type(exc).__name__})") from None
    used = frozenset(names & VARIABLES)
    return Program(expression, runner, used, "now" in used or "ageDays" in tokens)


def _identifiers(ast: lark.Tree[Any]) -> tuple[set[str], set[str], set[str], int, int]:
    """(identifiers read, names bound by macros, token texts, tree depth, macro nesting) of a parse tree."""
    names: set[str] = set()
    bound: set[str] = set()
    tokens: set[str] = set()
    deepest = nested = 0
    stack: list[tuple[Any, int, int]] = [(ast, 1, 0)]
    while stack:
        node, depth, macros = stack.pop()
        deepest, nested = max(deepest, depth), max(nested, macros)
        if isinstance(node, lark.Token):
            tokens.add(str(node))
            continue
        if not isinstance(node, lark.Tree):
            continue
        if node.data == "ident" and node.children:
            names.add(str(node.children[0]))
        if node.data == "member_dot_arg" and len(node.children) == 3:
            method, args = node.children[1], node.children[2]
            if str(method) in _MACROS and isinstance(args, lark.Tree) and args.children:
                bound.update(_bare_ident(args.children[0]))
                # The target is evaluated once; the arguments once per element.
                stack.append((node.children[0], depth + 1, macros))
                stack.extend((child, depth + 1, macros + 1) for child in node.children[1:])
                continue
        stack.extend((child, depth + 1, macros) for child in node.children)
    return names, bound, tokens, deepest, nested


def _bare_ident(expr: Any) -> set[str]:
    """The name if ``expr`` is nothing but one identifier (a macro's bound variable)."""
    while isinstance(expr, lark.Tree) and len(expr.children) == 1 and expr.data != "ident":
        expr = expr.children[0]
    if isinstance(expr, lark.Tree) and expr.data == "ident" and expr.children:
        return {str(expr.children[0])}
    return set()


def evaluate(program: Program, activation: Mapping[str, Any]) -> tuple[bool, str | None]:
    """(satisfied, why not when it could not be evaluated)."""
    try:
        value = program.runner.evaluate(dict(activation))
    except CELEvalError as exc:
        return False, _error_text(exc)
    except (ArithmeticError, RecursionError, ValueError, TypeError, KeyError, IndexError) as exc:
        return False, f"{type(exc).__name__}: {_clip(str(exc))}"
    if isinstance(value, CELEvalError):
        return False, _error_text(value)
    if isinstance(value, celtypes.BoolType | bool):  # BoolType is an int, not a bool
        return bool(value), None
    return False, f"evaluated to {_clip(repr(value))}, not a boolean"


def _error_text(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    # celpy appends the whole activation to some messages: keep the first clause only.
    return _clip(text.split(" (in activation", 1)[0])


def _clip(text: str) -> str:
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 1] + "…"


# --- the variables a rule sees ----------------------------------------------------------------------------


def activation(
    candidate: Candidate, *, environment: str | None, phase: Phase, now: datetime
) -> dict[str, Any]:
    """The CEL variables for one candidate; ``document`` and ``evidence`` are empty maps when not loaded."""
    age = (now - candidate.published_at) / timedelta(days=1)
    return {
        "document": to_cel(candidate.document or {}),
        "resource": to_cel(
            {
                "kind": candidate.kind,
                "namespace": candidate.namespace,
                "name": candidate.name,
                "labels": dict(candidate.labels),
            }
        ),
        "version": to_cel(
            {
                "version": candidate.version,
                "state": candidate.state.value,
                "publishedAt": candidate.published_at,
                "ageDays": float(age),
                "blocked": candidate.blocked,
                "sunset": candidate.sunset,
            }
        ),
        "evidence": to_cel(candidate.evidence if candidate.evidence is not None else NO_EVIDENCE),
        "environment": celtypes.StringType(environment or ""),
        "phase": celtypes.StringType(phase.value),
        "now": celtypes.TimestampType(now),
    }


def to_cel(value: Any) -> Any:
    """A JSON-like value (plus datetimes) as CEL values; integers beyond int64 become doubles."""
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value) if -_INT64 <= value < _INT64 else celtypes.DoubleType(float(value))
    if isinstance(value, float):
        return celtypes.DoubleType(value if math.isfinite(value) else 0.0)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, datetime):
        return celtypes.TimestampType(value)
    if isinstance(value, Mapping):
        return celtypes.MapType({celtypes.StringType(str(k)): to_cel(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return celtypes.ListType([to_cel(v) for v in value])
    return celtypes.StringType(str(value))


# --- what callers must load --------------------------------------------------------------------------------


def needs_document(policy: Policy, phase: Phase) -> bool:
    """Does any CEL rule applied in ``phase`` read ``document``?"""
    return _reads(policy, phase, "document")


def needs_evidence(policy: Policy, phase: Phase) -> bool:
    """Does any CEL rule applied in ``phase`` read ``evidence``?"""
    return _reads(policy, phase, "evidence")


def _reads(policy: Policy, phase: Phase, name: str) -> bool:
    return any(
        phase in rule.phases and name in compile_expression(rule.expression).names for rule in policy.rules
    )


__all__ = [
    "VARIABLES",
    "CelError",
    "Program",
    "activation",
    "compile_expression",
    "evaluate",
    "needs_document",
    "needs_evidence",
    "to_cel",
]
