"""Who is acting: a user (OIDC) or a service account (API key), with roles per tenant.

A principal may hold roles in several tenants; what it may do to an object depends on the roles it holds
in the tenant that owns the object (see ``domain.permissions``). An API key may be scoped further.
``cache_key`` names what distinguishes the principal's view of the catalog: its tenants (or all of them),
and, for a scoped key, the key itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

DEFAULT_TENANT = "default"


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    TENANT_ADMIN = "tenant_admin"
    DEVELOPER = "developer"
    OPERATOR = "operator"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    VIEWER = "viewer"


TENANT_ROLES = tuple(r for r in Role if r is not Role.SUPER_ADMIN)


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class KeyScope:
    """Limits on an API key beyond its roles; ``None`` means no limit of that sort.

    ``resources`` are ``kind/namespace/name`` strings; ``actions`` are permission names.
    """

    namespaces: frozenset[str] | None = None
    resources: frozenset[str] | None = None
    actions: frozenset[str] | None = None

    @property
    def unlimited(self) -> bool:
        return self.namespaces is None and self.resources is None and self.actions is None


UNSCOPED = KeyScope()
_NO_ROLES: Mapping[str, frozenset[Role]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    kind: PrincipalKind = PrincipalKind.SERVICE
    memberships: Mapping[str, frozenset[Role]] = field(default_factory=lambda: _NO_ROLES)
    super_admin: bool = False
    scope: KeyScope = UNSCOPED
    display_name: str = ""
    expires_at: datetime | None = None
    key_id: str | None = None
    # Computed once: the fast lane reads it on every request.
    cache_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        view = "*" if self.super_admin else ",".join(sorted(self.memberships))
        object.__setattr__(self, "cache_key", view if self.scope.unlimited else f"{view}|{self.subject}")

    def roles_in(self, tenant: str) -> frozenset[Role]:
        return self.memberships.get(tenant, frozenset())

    @property
    def tenants(self) -> tuple[str, ...]:
        """The tenants this principal belongs to, sorted."""
        return tuple(sorted(self.memberships))

    @property
    def home_tenant(self) -> str | None:
        """The one tenant this principal acts for by default (None if it belongs to none or several)."""
        return next(iter(self.memberships)) if len(self.memberships) == 1 else None


def member(
    subject: str,
    tenant: str,
    *roles: Role,
    kind: PrincipalKind = PrincipalKind.SERVICE,
    scope: KeyScope = UNSCOPED,
) -> Principal:
    """A principal with ``roles`` in one tenant (tests and service accounts)."""
    return Principal(
        subject=subject, kind=kind, memberships=MappingProxyType({tenant: frozenset(roles)}), scope=scope
    )


# Single-user mode: no authentication; the default tenant's admin, which claims namespaces as it publishes.
ANONYMOUS = Principal(
    subject="anonymous",
    kind=PrincipalKind.ANONYMOUS,
    memberships=MappingProxyType({DEFAULT_TENANT: frozenset({Role.TENANT_ADMIN})}),
)
