"""Who is acting: a principal belongs to one tenant and holds roles there."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    tenant: str
    roles: frozenset[str]


# Single-user mode: no authentication, one tenant that owns every namespace it publishes into.
ANONYMOUS = Principal(subject="anonymous", tenant=DEFAULT_TENANT, roles=frozenset({"tenant_admin"}))
