"""The one fetcher for every URL fetched on a user's behalf (admission webhooks, agent cards, upstreams).

A URL in a policy or a discovery source is chosen by a tenant, and the registry runs inside the operator's
network: without care it would reach the cloud metadata service, the database or a cluster-internal admin
port for them (SSRF). So every fetch here:

- is https, unless the host (by name, or every address it resolves to, by CIDR) is on the operator's
  allow-list (``AGENTREG_FETCH_ALLOW``: comma-separated hostnames and CIDRs), which also permits private
  addresses;
- resolves the name first and refuses any non-public address (loopback, private, link-local, shared,
  multicast, reserved, IPv4-mapped and tunnelled IPv6) that the allow-list does not cover;
- connects to the address it checked (pinned: the request goes to the IP, with the ``Host`` header and the
  TLS server name set to the original host), so a second DNS answer cannot swap in another address;
- ignores proxy settings from the environment, follows no redirect for POST and at most three for GET, each
  checked again from the start;
- bounds the response size (1 MiB by default, counted after decompression) and the total time.

Anything refused or failed raises ``FetchError``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

MIB = 1024 * 1024
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


class FetchError(Exception):
    """A URL was refused (scheme, address, redirect) or could not be fetched (timeout, connection, size)."""


@dataclass(frozen=True, slots=True)
class FetchResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str  # the URL that answered (after redirects), as the caller wrote it, not the pinned IP


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts the operator trusts: by exact hostname, or by address range."""

    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            host = entry.lower().rstrip(".")
            if not host or any(not (c.isalnum() or c in ".-_") for c in host):
                raise ValueError(f"AGENTREG_FETCH_ALLOW: {entry!r} is neither a hostname nor a CIDR")
            hosts.add(host)
        return cls(frozenset(hosts), tuple(networks))

    def covers(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)


def refusal(ip: IPAddress) -> str | None:
    """Why a fetch must not reach ``ip`` unless allow-listed; None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if ip.sixtofour is not None or ip.teredo is not None:
            return "a tunnelled IPv6 address"
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            return refusal(embedded) and "a NAT64 address of a non-public IPv4 address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved or non-public address"
    return None


async def _system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """Where a checked URL is fetched from."""

    url: httpx.URL  # with the checked IP as host
    host_header: str
    sni: str | None


class Fetcher:
    """Fetches URLs under the rules above; ``allow`` is the operator's allow-list."""

    def __init__(
        self,
        allow: str = "",
        *,
        max_bytes: int = MIB,
        resolve: Resolver | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.allow = AllowList.parse(allow)
        self.max_bytes = max_bytes
        self._resolve = resolve or _system_resolve
        self._verify: ssl.SSLContext | bool = verify if verify is not None else True

    # The time limit is the fetcher's own rule (DNS, connect and reading together), so it is a parameter.
    async def post_json(self, url: str, payload: Any, timeout: float) -> tuple[int, Any]:  # noqa: ASYNC109
        """POST ``payload`` as JSON; (status, the JSON answer). No redirects. A 2xx answer that is not JSON
        raises FetchError; for any other status the answer is None unless it is JSON."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"content-type": "application/json", "accept": "application/json"}
        response = await self._bounded(self._send("POST", url, body, headers, self.max_bytes, 0), timeout)
        try:
            return response.status, json.loads(response.body)
        except ValueError:
            if 200 <= response.status < 300:
                raise FetchError(
                    f"{_origin(url)} answered {response.status} with a body that is not JSON"
                ) from None
            return response.status, None

    async def get(
        self,
        url: str,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        max_redirects: int = MAX_REDIRECTS,
    ) -> FetchResponse:
        """GET ``url``, following at most ``max_redirects`` redirects (each checked like the first)."""
        limit = max_bytes or self.max_bytes
        return await self._bounded(
            self._send("GET", url, None, dict(headers or {}), limit, min(max_redirects, MAX_REDIRECTS)),
            timeout,
        )

    async def _bounded(self, work: Awaitable[FetchResponse], limit_s: float) -> FetchResponse:
        try:
            async with asyncio.timeout(limit_s):
                return await work
        except TimeoutError:
            raise FetchError(f"no complete answer within {limit_s:g} s") from None

    async def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        limit: int,
        redirects: int,
    ) -> FetchResponse:
        for _ in range(redirects + 1):
            target = await self.check(url)
            response = await self._once(method, url, target, body, headers, limit)
            location = response.headers.get("location")
            if method != "GET" or response.status not in REDIRECTS or not location:
                return response
            url = str(httpx.URL(url).join(location))
        raise FetchError(f"more than {redirects} redirect(s) from {_origin(url)}")

    async def check(self, url: str) -> Target:
        """Where ``url`` may be fetched from, pinned to one checked address; FetchError if it may not."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise FetchError(f"not a valid URL: {exc}") from None
        name = parsed.raw_host.decode("ascii")  # IDNA-encoded: what DNS, TLS and Host headers use
        host = name.lower().rstrip(".")
        if parsed.scheme not in ("http", "https") or not host:
            raise FetchError("only http(s) URLs with a host can be fetched")
        if parsed.userinfo:
            raise FetchError("URLs with credentials are not fetched")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        named = host in self.allow.hosts
        if parsed.scheme != "https" and not named and not self.allow.networks:
            raise FetchError(f"{_origin(url)}: only https URLs are fetched (unless the host is allow-listed)")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await self._resolve(host, port)]
            except (OSError, UnicodeError, ValueError) as exc:
                raise FetchError(f"cannot resolve {host}: {exc}") from None
            if not addresses:
                raise FetchError(f"cannot resolve {host}: no addresses")
        trusted = named or all(self.allow.covers(ip) for ip in addresses)
        if parsed.scheme != "https" and not trusted:
            raise FetchError(f"{_origin(url)}: only https URLs are fetched (unless the host is allow-listed)")
        for ip in addresses:
            why = None if named or self.allow.covers(ip) else refusal(ip)
            if why is not None:
                where = f"{host} is" if literal is not None else f"{host} resolves to"
                raise FetchError(f"{where} {why} ({ip}), which is not fetched unless allow-listed")
        ip = min(addresses, key=lambda a: a.version)  # IPv4 first: IPv6 is often unrouted in clusters
        bracketed = f"[{name}]" if ":" in name else name
        host_header = bracketed if parsed.port is None else f"{bracketed}:{parsed.port}"
        sni = host if parsed.scheme == "https" and literal is None else None
        return Target(parsed.copy_with(host=str(ip)), host_header, sni)

    async def _once(
        self,
        method: str,
        url: str,
        target: Target,
        body: bytes | None,
        headers: dict[str, str],
        limit: int,
    ) -> FetchResponse:
        extensions = {"sni_hostname": target.sni} if target.sni else {}
        request_headers = {"user-agent": "agentreg", **headers, "host": target.host_header}
        try:
            async with (
                httpx.AsyncClient(
                    trust_env=False, follow_redirects=False, verify=self._verify, timeout=None
                ) as client,
                client.stream(
                    method, target.url, content=body, headers=request_headers, extensions=extensions
                ) as response,
            ):
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise FetchError(f"{_origin(url)} answered with {declared} bytes; the limit is {limit}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise FetchError(f"{_origin(url)} answered with more than {limit} bytes")
                    chunks.append(chunk)
                answer = {k.lower(): v for k, v in response.headers.items()}
                return FetchResponse(response.status_code, answer, b"".join(chunks), url)
        except (httpx.HTTPError, OSError) as exc:
            raise FetchError(f"{_origin(url)}: {type(exc).__name__}: {exc or 'failed'}") from None


def _origin(url: str) -> str:
    """The scheme and host of ``url``, for messages (never its path or query, which may hold tokens)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return "the URL"
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}"


_default = Fetcher()


def configure(allow: str) -> Fetcher:
    """Set the process-wide fetcher from the settings (``create_app`` calls it)."""
    return install(Fetcher(allow))


def install(fetcher: Fetcher) -> Fetcher:
    """Make ``fetcher`` the process-wide one (tests put back the one they found)."""
    global _default
    _default = fetcher
    return _default


def default() -> Fetcher:
    return _default
