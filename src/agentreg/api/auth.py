"""Who is calling. Single-user mode for now: every request acts as the default tenant's admin.

Both the FastAPI dependency and the fast lane call ``authenticate`` so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentreg.domain.principals import ANONYMOUS, Principal


def authenticate(headers: Mapping[str, str]) -> Principal:
    return ANONYMOUS
