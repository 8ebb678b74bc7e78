"""Service accounts and their API keys: create (shown once), list, revoke, authenticate, bootstrap.

A key is ``agr_`` + 43 base64url characters (32 random bytes). Only its SHA-256 is stored: with 256
random bits a slow password hash adds nothing. Authentication is cached by that hash. A cached answer
older than a second is re-checked against the store if anything changed since (revocation is a change),
so a key revoked on another replica stops working within about a second; on this one, at once.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from agentreg.domain.errors import Conflict, Invalid, NotFound, Unauthenticated
from agentreg.domain.names import NAMESPACE_RE, check_tenant_id, parse_ref
from agentreg.domain.permissions import Action, authorize, can_grant, grant_problem
from agentreg.domain.principals import KeyScope, Principal, PrincipalKind, Role
from agentreg.services import audit
from agentreg.services.access import member_tenant, readers
from agentreg.store.interface import ApiKeyRow, Store

KEY_PREFIX = "agr_"
KEY_RE = re.compile(r"agr_[A-Za-z0-9_-]{43}", re.ASCII)
# Events that belong to no tenant (tenant creation, global keys) chain here; no tenant can have this id.
SYSTEM_TENANT = "_system"
RECHECK_AFTER_S = 1.0
TOUCH_EVERY = timedelta(minutes=1)
MAX_CACHED = 10_000
log = logging.getLogger(__name__)


def new_secret() -> str:
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CreatedKey:
    row: ApiKeyRow
    secret: str  # shown once, never stored


def parse_roles(values: Sequence[str], field: str = "/roles") -> frozenset[Role]:
    if not values:
        raise Invalid.at(field, "name at least one role")
    roles = set()
    for i, value in enumerate(values):
        try:
            roles.add(Role(value))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise Invalid.at(f"{field}/{i}", f"unknown role {value!r}; one of {known}") from None
    return frozenset(roles)


def parse_scope(scope: dict[str, Any] | None) -> KeyScope:
    """``{namespaces, resources, actions}``, each a list or absent (no limit of that sort)."""
    if not scope:
        return KeyScope()
    unknown = sorted(set(scope) - {"namespaces", "resources", "actions"})
    if unknown:
        raise Invalid.at(f"/scope/{unknown[0]}", "a scope limits namespaces, resources or actions")
    limits: dict[str, frozenset[str] | None] = {}
    for part, check in (
        ("namespaces", _check_namespace),
        ("resources", _check_resource),
        ("actions", _check_action),
    ):
        values = scope.get(part)
        if values is None:
            limits[part] = None
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise Invalid.at(f"/scope/{part}", "must be a list of strings")
        for i, value in enumerate(values):
            check(value, f"/scope/{part}/{i}")
        limits[part] = frozenset(values)
    return KeyScope(limits["namespaces"], limits["resources"], limits["actions"])


def _check_namespace(value: str, field: str) -> None:
    if not NAMESPACE_RE.fullmatch(value):
        raise Invalid.at(field, "is not a namespace")


def _check_resource(value: str, field: str) -> None:
    ref = parse_ref(value, field)
    if ref.kind is None or "@" in value:
        raise Invalid.at(field, "name a resource as kind/namespace/name, e.g. agent/acme/helper")
    if str(ref.kind.value) + "/" + ref.namespace + "/" + ref.name != value:
        raise Invalid.at(field, f"write it as {ref.kind.value}/{ref.namespace}/{ref.name}")


def _check_action(value: str, field: str) -> None:
    if value not in {a.value for a in Action}:
        raise Invalid.at(field, f"unknown action {value!r}; see docs/security.md")


def scope_json(scope: KeyScope) -> dict[str, list[str]]:
    parts = {"namespaces": scope.namespaces, "resources": scope.resources, "actions": scope.actions}
    return {k: sorted(v) for k, v in parts.items() if v is not None}


def principal_of(row: ApiKeyRow) -> Principal:
    roles = frozenset(Role(r) for r in row.roles)
    tenant_roles = roles - {Role.SUPER_ADMIN}
    memberships = {row.tenant_id: tenant_roles} if row.tenant_id is not None and tenant_roles else {}
    return Principal(
        subject=f"key:{row.id}",
        kind=PrincipalKind.SERVICE,
        memberships=MappingProxyType(memberships),
        super_admin=Role.SUPER_ADMIN in roles,
        scope=parse_scope(row.scope),
        display_name=row.name,
        expires_at=row.expires_at,
        key_id=row.id,
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def create_key(
    store: Store,
    actor: Principal,
    *,
    name: str,
    tenant: str | None,
    roles: Sequence[str],
    scope: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    if not name or len(name) > 200 or not name.isprintable():
        raise Invalid.at("/name", "name the key: 1-200 printable characters")
    wanted = parse_roles(roles)
    key_scope = parse_scope(scope)
    now = _now()
    if expires_at is not None and expires_at.tzinfo is None:
        raise Invalid.at("/expiresAt", "give a time zone, e.g. 2027-01-01T00:00:00Z")
    if expires_at is not None and expires_at <= now:
        raise Invalid.at("/expiresAt", "must be in the future")
    if tenant is None and Role.SUPER_ADMIN not in wanted:
        tenant = actor.home_tenant
        if tenant is None:
            raise Invalid.at("/tenant", "name the tenant the key acts in")
    if tenant is not None:
        check_tenant_id(tenant, "/tenant")
        if Role.SUPER_ADMIN in wanted:
            raise Invalid.at("/roles", "a super_admin key is global: give no tenant")
    async with store.begin(readers=readers(actor)) as tx:
        if tenant is not None:
            await member_tenant(tx, actor, tenant)
        authorize(actor, Action.KEY_MANAGE, tenant)
        if not can_grant(actor, tenant or "", wanted):
            raise Invalid.at(
                "/roles", "a key's roles cannot exceed its creator's: only a super admin grants super_admin"
            )
        problem = grant_problem(actor, key_scope, expires_at)
        if problem is not None:
            raise Invalid.at(*problem)
        secret = new_secret()
        row = _new_key(tenant, name, secret, wanted, scope_json(key_scope), now, actor.subject, expires_at)
        await tx.insert_api_key(row)
        await audit.record(
            tx,
            actor,
            "key.create",
            f"key/{row.id}",
            now,
            tenant=tenant or SYSTEM_TENANT,
            name=name,
            roles=list(row.roles),
            scope=row.scope,
            expiresAt=expires_at.isoformat() if expires_at else None,
        )
    return CreatedKey(row, secret)


async def list_keys(store: Store, actor: Principal, tenant: str | None) -> list[ApiKeyRow]:
    """Keys of ``tenant`` (default: the actor's one tenant); a super admin without a tenant sees global keys."""
    if tenant is None and not actor.super_admin:
        tenant = actor.home_tenant
        if tenant is None:
            raise Invalid.at("/tenant", "name the tenant whose keys to list")
    async with store.read(readers=readers(actor)) as tx:
        if tenant is not None:
            check_tenant_id(tenant, "/tenant")
            await member_tenant(tx, actor, tenant)
        authorize(actor, Action.KEY_MANAGE, tenant)
        return await tx.list_api_keys(tenant)


async def revoke_key(store: Store, actor: Principal, key_id: str) -> ApiKeyRow:
    now = _now()
    async with store.begin(readers=readers(actor)) as tx:
        row = await tx.get_api_key(key_id) if len(key_id) <= 32 else None
        visible = row is not None and (
            actor.super_admin or (row.tenant_id is not None and row.tenant_id in actor.memberships)
        )
        if row is None or not visible:
            raise NotFound(f"API key {key_id!r} not found")
        authorize(actor, Action.KEY_MANAGE, row.tenant_id)
        if row.revoked_at is not None:
            return row
        await tx.revoke_api_key(key_id, now)
        await audit.record(
            tx,
            actor,
            "key.revoke",
            f"key/{key_id}",
            now,
            tenant=row.tenant_id or SYSTEM_TENANT,
            name=row.name,
        )
    return replace(row, revoked_at=now)


async def bootstrap(store: Store, secret: str | None = None, *, force: bool = False) -> CreatedKey | None:
    """The first super-admin key. With ``secret`` (AGENTREG_BOOTSTRAP_KEY) it is that key, idempotently.

    Without one, a key is generated unless an active super-admin key exists (``force`` makes another).
    Returns None when nothing was created.
    """
    if secret is not None and not KEY_RE.fullmatch(secret):
        raise Invalid.at("AGENTREG_BOOTSTRAP_KEY", "must look like agr_ followed by 43 base64url characters")
    now = _now()
    system = Principal(subject="system:bootstrap", super_admin=True)
    async with store.begin() as tx:
        if secret is not None:
            if await tx.api_key_by_hash(hash_secret(secret)) is not None:
                return None
        elif not force:
            active = [k for k in await tx.list_api_keys(None) if _active(k, now) and "super_admin" in k.roles]
            if active:
                raise Conflict(
                    f"a super-admin key exists already ({active[0].id}); use it, or bootstrap with --force"
                )
        secret = secret or new_secret()
        row = _new_key(None, "bootstrap", secret, {Role.SUPER_ADMIN}, {}, now, system.subject, None)
        await tx.insert_api_key(row)
        await audit.record(tx, system, "key.bootstrap", f"key/{row.id}", now, tenant=SYSTEM_TENANT)
    return CreatedKey(row, secret)


def _new_key(
    tenant: str | None,
    name: str,
    secret: str,
    roles: Iterable[Role],
    scope: dict[str, list[str]],
    now: datetime,
    created_by: str,
    expires_at: datetime | None,
) -> ApiKeyRow:
    return ApiKeyRow(
        id="k" + secrets.token_hex(8),
        tenant_id=tenant,
        name=name,
        secret_hash=hash_secret(secret),
        roles=tuple(sorted(r.value for r in roles)),
        scope=scope,
        created_at=now,
        created_by=created_by,
        expires_at=expires_at,
        last_used_at=None,
        revoked_at=None,
    )


def _active(row: ApiKeyRow, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


@dataclass(slots=True)
class _Cached:
    principal: Principal
    checked_at: float
    token: int
    expires_at: float | None  # epoch seconds


class KeyAuthenticator:
    """API key → principal, cached by the key's hash; see the module docstring for when it re-checks."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._cache: dict[bytes, _Cached] = {}

    def forget(self) -> None:
        self._cache.clear()

    def cached(self, digest: bytes) -> Principal | None:
        """The principal for a key hash while the cached answer holds (synchronous: the hot path's case)."""
        cached = self._cache.get(digest)
        if cached is None:
            return None
        # The clock first: reading the change token costs a few microseconds, the clock almost nothing.
        tick = self.clock()
        fresh = tick - cached.checked_at < RECHECK_AFTER_S
        if not fresh and cached.token == self.store.changes.token():
            cached.checked_at, fresh = tick, True  # nothing changed anywhere: trust it another second
        if fresh and (cached.expires_at is None or cached.expires_at > time.time()):
            return cached.principal
        del self._cache[digest]
        return None

    async def principal(self, secret: str) -> Principal:
        digest = hashlib.sha256(secret.encode()).digest()
        principal = self.cached(digest)
        if principal is not None:
            return principal
        token = self.store.changes.token()
        if not KEY_RE.fullmatch(secret):
            raise Unauthenticated("invalid API key")
        async with self.store.read() as tx:
            row = await tx.api_key_by_hash(digest.hex())
        now = _now()
        if row is None:
            raise Unauthenticated("invalid API key")
        if row.revoked_at is not None:
            raise Unauthenticated("this API key was revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("this API key has expired")
        principal = principal_of(row)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        expires = row.expires_at.timestamp() if row.expires_at is not None else None
        self._cache[digest] = _Cached(principal, self.clock(), token, expires)
        if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
            await self._touch(row.id, now)
        return principal

    async def _touch(self, key_id: str, now: datetime) -> None:
        try:
            async with self.store.begin() as tx:
                await tx.touch_api_key(key_id, now)
        except Exception as exc:  # last-used time is informative; never fail a request over it
            log.warning("could not record the last use of key %s: %s", key_id, exc)
