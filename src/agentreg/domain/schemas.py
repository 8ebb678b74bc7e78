"""JSON Schemas shipped in the package, and jsonschema errors turned into field issues (RFC 6901 pointers)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from agentreg.domain.errors import FieldIssue

_MAX_MESSAGE = 240


def load_schema(path: str) -> dict[str, Any]:
    """A schema file under ``agentreg/domain/schemas/``."""
    text = resources.files("agentreg.domain").joinpath("schemas", *path.split("/")).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def validator(path: str, definition: str | None = None) -> Validator:
    """A compiled validator for a packaged schema, or for one of its ``definitions``."""
    schema = load_schema(path)
    cls = validator_for(schema, default=Draft7Validator)
    if definition is not None:
        # Keep the whole document so "#/definitions/..." references resolve, but validate one definition.
        schema = {**schema, "$ref": f"#/definitions/{definition}"}
    return cls(schema)


def pointer(base: str, path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return base + "".join("/" + p for p in parts)


def issues(compiled: Validator, instance: Any, base: str) -> list[FieldIssue]:
    """Every validation problem, each named at the field at fault (a missing field at its own pointer)."""
    found: list[FieldIssue] = []
    for error in sorted(compiled.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        found.extend(_explain(error, base))
    unique = dict.fromkeys(found)
    return list(unique)


def _explain(error: ValidationError, base: str) -> list[FieldIssue]:
    if error.context and error.validator in ("anyOf", "oneOf"):
        deepest = best_match(error.context)
        if deepest is not None and list(deepest.absolute_path) != list(error.absolute_path):
            return _explain(deepest, base)
    at = pointer(base, error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        wanted = error.validator_value if isinstance(error.validator_value, list) else []
        return [FieldIssue(f"{at}/{name}", "is required") for name in wanted if name not in error.instance]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
        extra = [k for k in error.instance if k not in allowed]
        return [FieldIssue(pointer(at, [k]), "is not an allowed property") for k in extra]
    message = error.message
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return [FieldIssue(at, message)]
