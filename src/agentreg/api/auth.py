"""Who is calling: ``Authorization: Bearer <API key or OIDC token>``, rate limited per principal and address.

Both the FastAPI dependency and the fast lane call ``Authenticator.authenticate`` so they never disagree.
In single-user mode a request without credentials acts as the default tenant's admin; credentials that
are sent are still checked.
"""

from __future__ import annotations

import hashlib
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


def _signature(token: str) -> str:
    """The part of a JWT a cache of verified tokens is keyed on: its signature (a third of its length).

    A token is cached only after its signature verified over its header and payload, and the answer is
    the principal those said. Another token carrying the same signature gets that same principal, which
    is what replaying the original token gets; so nothing is gained by forging the rest.
    """
    return token[token.rfind(".") + 1 :]


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

    async def authenticate(self, authorization: str | None, address: str | None) -> Principal:
        address = address or "unknown"
        if self.per_address is not None and (wait := self.per_address.take(address)) is not None:
            raise RateLimited("too many requests from this address", wait)
        if not authorization:
            if self.required:
                raise Unauthenticated(
                    "authentication required: send Authorization: Bearer <API key or token>"
                )
            return ANONYMOUS
        if self._blocked and address in self._blocked:
            blocked_until = self._blocked[address]
            if blocked_until > time.monotonic():
                raise RateLimited(
                    "too many failed authentications from this address", blocked_until - time.monotonic()
                )
            del self._blocked[address]
        # The common case, inline and synchronous: a credential verified a moment ago.
        credential = authorization[7:].strip()
        is_key = credential.startswith(KEY_PREFIX)
        digest = hashlib.sha256((credential if is_key else _signature(credential)).encode()).digest()
        principal = (
            self.keys.cached(digest)
            if is_key
            else self.oidc.cached(digest)
            if self.oidc is not None
            else None
        )
        if principal is None or not (
            authorization.startswith("Bearer ") or authorization[:7].lower() == _BEARER
        ):
            try:
                principal = await self._verify(authorization, credential, digest, is_key)
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

    async def _verify(self, authorization: str, credential: str, digest: bytes, is_key: bool) -> Principal:
        if authorization[:7].lower() != _BEARER or not credential:
            raise Unauthenticated("use Authorization: Bearer <API key or token>")
        if is_key:
            return await self.keys.principal(credential, digest)
        if self.oidc is None:
            raise Unauthenticated("not an API key, and OIDC is not configured on this registry")
        return await self.oidc.principal(credential, digest)

    def _failed(self, address: str) -> float | None:
        """Count a failure; once the address is out of tries, block it and return how long for."""
        if self.failures is None or (wait := self.failures.take(address)) is None:
            return None
        if len(self._blocked) > 100_000:
            self._blocked.clear()
        self._blocked[address] = time.monotonic() + wait
        return wait
