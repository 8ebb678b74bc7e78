"""Detect unfilled release-template placeholders in names, versions and URLs."""

from __future__ import annotations

import re
from typing import Any

from agentreg.domain.errors import FieldIssue

_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|<<.*?>>|\$\{[^}]*\}|\$VERSION\b|\$\{?[A-Z][A-Z0-9_]*_VERSION\b")
_NAME_KEYS = {"name", "namespace", "version", "identifier"}


def _is_checked(key: str, value: str) -> bool:
    lowered = key.lower()
    return lowered in _NAME_KEYS or lowered.endswith(("url", "uri")) or "://" in value


def find_placeholder(document: Any, base: str = "") -> FieldIssue | None:
    """The first name, version or URL (by key, or any value with ``://``) that still holds a placeholder."""
    stack: list[tuple[str, str, Any]] = [(base, "", document)]
    while stack:
        at, key, value = stack.pop()
        if isinstance(value, dict):
            for k, v in reversed(list(value.items())):
                escaped = str(k).replace("~", "~0").replace("/", "~1")
                stack.append((f"{at}/{escaped}", str(k), v))
        elif isinstance(value, list):
            for i in reversed(range(len(value))):
                stack.append((f"{at}/{i}", key, value[i]))
        elif isinstance(value, str) and _is_checked(key, value):
            match = _PLACEHOLDER.search(value)
            if match:
                return FieldIssue(at, f"contains an unfilled template placeholder {match.group(0)!r}")
    return None
