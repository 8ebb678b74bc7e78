"""Who is calling: ``Authorization: Bearer <API key or OIDC token>``, rate limited per principal and address.

Both the FastAPI dependency and the fast lane call ``Authenticator.authenticate`` so they never disagree.
In single-user mode a request without credentials acts as the default tenant's admin; credentials that
are sent are still checked.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import MutableMapping
from typing import Any

from agentreg.api.ratelimit import RateLimiter, parse_limit
from agentreg.config import Settings
from agentreg.domain.errors import RateLimited, Unauthenticated
from agentreg.domain.principals import ANONYMOUS, Principal
from agentreg.services.identity import KEY_PREFIX, KeyAuthenticator
from agentreg.services.oidc import OidcConfig, OidcVerifier, parse_role_map
from agentreg.store.interface import Store

_BEARER = "bearer "


def client_address(scope: MutableMapping[str, Any]) -> str | None:
    """The peer's address (behind a proxy, run uvicorn with --forwarded-allow-ips so it is the client's)."""
    client = scope.get("client")
    return str(client[0]) if client else None


def _limiter(text: str) -> RateLimiter | None:
    limit = parse_limit(text)
    return RateLimiter(limit) if limit is not None else None


def oidc_config(settings: Settings) -> OidcConfig | None:
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_audience:
        raise ValueError("AGENTREG_OIDC_AUDIENCE is required with AGENTREG_OIDC_ISSUER")
    return OidcConfig(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
        roles_claim=settings.oidc_roles_claim,
        role_map=parse_role_map(settings.oidc_role_map),
    )


MAX_BLOCKED = 100_000


def _network(address: str) -> str:
    """Failed attempts count per IPv4 address, and per /64 for IPv6 (one host commonly holds a whole /64)."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    except ValueError:
        return address


class Authenticator:
    def __init__(self, store: Store, settings: Settings, oidc: OidcVerifier | None = None) -> None:
        self.required = settings.auth_required
        self.keys = KeyAuthenticator(store)
        config = oidc_config(settings)
        self.oidc = oidc if oidc is not None else (OidcVerifier(config) if config is not None else None)
        self.per_principal = _limiter(settings.rate_limit)
        self.per_address = _limiter(settings.rate_limit_ip)
        self.failures = _limiter(settings.auth_failure_limit)
        self._blocked: dict[str, float] = {}

    async def aclose(self) -> None:
        if self.oidc is not None:
            await self.oidc.aclose()

    def known(self, authorization: str | None, address: str | None) -> Principal | None:
        """The common case, synchronous (the hot path calls it first): an anonymous caller in single-user
        mode, or a credential verified a moment ago, within the rate limits. None means "ask
        ``authenticate``", which handles every other case and every refusal."""
        if self.per_address is not None and self.per_address.take(address or "unknown") is not None:
            return None
        if not authorization:
            return None if self.required else ANONYMOUS
        if not authorization.startswith("Bearer ") or (
            self._blocked and _network(address or "unknown") in self._blocked
        ):
            return None
        credential = authorization[7:].strip()
        digest = hashlib.sha256(credential.encode()).digest()
        if credential.startswith(KEY_PREFIX):
            principal = self.keys.cached(digest)
        else:
            principal = self.oidc.cached(digest) if self.oidc is not None else None
        if principal is None or (
            self.per_principal is not None and self.per_principal.take(principal.subject) is not None
        ):
            return None
        return principal

    async def authenticate(self, authorization: str | None, address: str | None) -> Principal:
        """The caller, or the reason it is refused (401, or 429 with the wait)."""
        return self.known(authorization, address) or await self.verify(authorization, address)

    async def verify(self, authorization: str | None, address: str | None) -> Principal:
        """What ``known`` could not answer: a credential not verified lately, or a refusal.

        The address's rate limit is charged again here, so a request that needs this path costs it two
        tokens: a credential's first use (or its first after a change anywhere), or a refusal.
        """
        address = address or "unknown"
        if self.per_address is not None and (wait := self.per_address.take(address)) is not None:
            raise RateLimited("too many requests from this address", wait)
        if not authorization:
            raise Unauthenticated("authentication required: send Authorization: Bearer <API key or token>")
        if self._blocked and (network := _network(address)) in self._blocked:
            blocked_until = self._blocked[network]
            if blocked_until > time.monotonic():
                raise RateLimited(
                    "too many failed authentications from this address", blocked_until - time.monotonic()
                )
            del self._blocked[network]
        credential = authorization[7:].strip()
        try:
            principal = await self._verify(authorization, credential)
        except Unauthenticated:
            wait = self._failed(address)
            if wait is not None:
                raise RateLimited("too many failed authentications from this address", wait) from None
            raise
        if (
            self.per_principal is not None
            and (wait := self.per_principal.take(principal.subject)) is not None
        ):
            raise RateLimited("too many requests for this principal", wait)
        return principal

    async def _verify(self, authorization: str, credential: str) -> Principal:
        if authorization[:7].lower() != _BEARER or not credential:
            raise Unauthenticated("use Authorization: Bearer <API key or token>")
        if credential.startswith(KEY_PREFIX):
            return await self.keys.principal(credential)
        if self.oidc is None:
            raise Unauthenticated("not an API key, and OIDC is not configured on this registry")
        return await self.oidc.principal(credential)

    def _failed(self, address: str) -> float | None:
        """Count a failure; once the address is out of tries, block it and return how long for."""
        network = _network(address)
        if self.failures is None or (wait := self.failures.take(network)) is None:
            return None
        now = time.monotonic()
        if len(self._blocked) > MAX_BLOCKED:  # forget only blocks that are over, never live ones
            self._blocked = {a: until for a, until in self._blocked.items() if until > now}
        self._blocked[network] = now + wait
        return wait
