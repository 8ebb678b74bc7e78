"""The permission matrix: which role may do what in its tenant. The one place this is decided.

``docs/security.md`` is rendered from ``MATRIX`` (``python -m agentreg.domain.permissions``), and the
tests check every cell. A principal may act on an object when a role it holds *in the tenant that owns
the object* allows the action, and its key's scope (if any) covers the action, namespace and resource.
``super_admin`` may do everything, in every tenant.

Visibility is separate: what a principal cannot read at all is reported as not found, never forbidden.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from agentreg.domain.errors import Forbidden
from agentreg.domain.principals import TENANT_ROLES, KeyScope, Principal, Role


class Action(StrEnum):
    READ = "catalog.read"
    PUBLISH = "version.publish"
    ANNOTATE = "resource.annotate"
    ALIAS = "alias.write"
    PROMOTION_REQUEST = "promotion.request"
    PROMOTION_APPROVE = "promotion.approve"
    LIFECYCLE_ADMIN = "lifecycle.admin"
    EVIDENCE_ATTEST = "evidence.attest"
    USAGE_REPORT = "usage.report"
    USAGE_READ = "usage.read"
    INSTANCE_REPORT = "instance.report"
    DEPLOYMENT_MANAGE = "deployment.manage"
    DISCOVERY_MANAGE = "discovery.manage"
    POLICY_MANAGE = "policy.manage"
    AUDIT_READ = "audit.read"
    NAMESPACE_CLAIM = "namespace.claim"
    NAMESPACE_SHARE = "namespace.share"
    KEY_MANAGE = "key.manage"
    TENANT_CREATE = "tenant.create"


DESCRIPTIONS: dict[Action, str] = {
    Action.READ: "read resources, versions, aliases, active configs and the tenant's namespaces",
    Action.PUBLISH: "publish versions (and apply batches)",
    Action.ANNOTATE: "change a resource's labels and annotations",
    Action.ALIAS: "set and remove aliases (rollback is moving an alias)",
    Action.PROMOTION_REQUEST: "request a lifecycle promotion",
    Action.PROMOTION_APPROVE: "approve a promotion (never one's own version)",
    Action.LIFECYCLE_ADMIN: "fast-track past gates, block and unblock versions and resources",
    Action.EVIDENCE_ATTEST: "attest evaluations and security scans",
    Action.USAGE_REPORT: "report usage (requests, errors, latency)",
    Action.USAGE_READ: "read usage and evidence",
    Action.INSTANCE_REPORT: "register, heartbeat and deregister live instances",
    Action.DEPLOYMENT_MANAGE: "manage deployments and their overlays",
    Action.DISCOVERY_MANAGE: "configure discovery sources",
    Action.POLICY_MANAGE: "change governance policy",
    Action.AUDIT_READ: "read, export and verify the audit log",
    Action.NAMESPACE_CLAIM: "claim an unclaimed namespace for the tenant",
    Action.NAMESPACE_SHARE: "make a namespace public or grant read to named tenants",
    Action.KEY_MANAGE: "create, list and revoke the tenant's API keys",
    Action.TENANT_CREATE: "create tenants (global)",
}

_A = Action
_EVERY_TENANT_ACTION = frozenset(a for a in Action if a is not Action.TENANT_CREATE)

MATRIX: dict[Role, frozenset[Action]] = {
    Role.SUPER_ADMIN: frozenset(Action),
    Role.TENANT_ADMIN: _EVERY_TENANT_ACTION,
    Role.DEVELOPER: frozenset(
        {
            _A.READ,
            _A.PUBLISH,
            _A.ANNOTATE,
            _A.ALIAS,
            _A.PROMOTION_REQUEST,
            _A.PROMOTION_APPROVE,
            _A.EVIDENCE_ATTEST,
            _A.USAGE_READ,
        }
    ),
    Role.OPERATOR: frozenset(
        {
            _A.READ,
            _A.DEPLOYMENT_MANAGE,
            _A.DISCOVERY_MANAGE,
            _A.INSTANCE_REPORT,
            _A.USAGE_REPORT,
            _A.USAGE_READ,
        }
    ),
    Role.ANALYST: frozenset({_A.READ, _A.USAGE_READ}),
    Role.AUDITOR: frozenset({_A.READ, _A.AUDIT_READ}),
    Role.VIEWER: frozenset({_A.READ}),
}


def role_allows(role: Role, action: Action) -> bool:
    return action in MATRIX[role]


def scope_allows(scope: KeyScope, action: Action, namespace: str | None, resource: str | None) -> bool:
    """Whether a key's scope covers this action on this namespace/resource (``kind/namespace/name``)."""
    if scope.actions is not None and action.value not in scope.actions:
        return False
    if scope.namespaces is not None and (namespace is None or namespace not in scope.namespaces):
        return False
    return scope.resources is None or (resource is not None and resource in scope.resources)


def allowed(
    principal: Principal,
    action: Action,
    tenant: str | None,
    *,
    namespace: str | None = None,
    resource: str | None = None,
) -> bool:
    """May ``principal`` do ``action`` in ``tenant`` (on ``namespace`` / ``resource`` when given)?"""
    if not scope_allows(principal.scope, action, namespace, resource):
        return False
    if principal.super_admin:
        return True
    if tenant is None:
        return False
    return any(action in MATRIX[role] for role in principal.roles_in(tenant))


def authorize(
    principal: Principal,
    action: Action,
    tenant: str | None,
    *,
    namespace: str | None = None,
    resource: str | None = None,
) -> None:
    if not allowed(principal, action, tenant, namespace=namespace, resource=resource):
        target = resource or namespace or tenant or "this registry"
        raise Forbidden(f"{principal.subject} may not {action.value} on {target}")


def can_grant(granter: Principal, tenant: str, roles: frozenset[Role]) -> bool:
    """A key's roles never exceed its creator's: tenant admins grant tenant roles, only super admins grant super_admin.

    The creator must itself be allowed ``key.manage`` there (its own key scope included); whether the new
    key's scope and expiry stay within the creator's is ``grant_problem``'s question.
    """
    if not allowed(granter, Action.KEY_MANAGE, tenant or None):
        return False
    return granter.super_admin or Role.SUPER_ADMIN not in roles


def grant_problem(granter: Principal, scope: KeyScope, expires_at: datetime | None) -> tuple[str, str] | None:
    """Why a key with ``scope`` and ``expires_at`` would outreach its creator's, as (field, issue); else None.

    A scoped creator makes only keys scoped within its own scope, and an expiring one only keys that
    expire no later: a key can never be used to mint a wider or longer-lived one.
    """
    for part in ("namespaces", "resources", "actions"):
        mine: frozenset[str] | None = getattr(granter.scope, part)
        theirs: frozenset[str] | None = getattr(scope, part)
        if mine is not None and (theirs is None or not theirs <= mine):
            return f"/scope/{part}", f"must stay within your own key's {part}: {', '.join(sorted(mine))}"
    if granter.expires_at is not None and (expires_at is None or expires_at > granter.expires_at):
        return "/expiresAt", f"must be no later than your own key's expiry, {granter.expires_at.isoformat()}"
    return None


def render_markdown() -> str:
    """The matrix as a Markdown table (pasted into docs/security.md by ``python -m``)."""
    roles = [Role.SUPER_ADMIN, *TENANT_ROLES]
    lines = [
        "| action | what it covers | " + " | ".join(f"`{r.value}`" for r in roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for action in Action:
        marks = " | ".join("✓" if role_allows(r, action) else "" for r in roles)
        lines.append(f"| `{action.value}` | {DESCRIPTIONS[action]} | {marks} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
