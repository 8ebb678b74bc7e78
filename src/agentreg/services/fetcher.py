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
- bounds the connect time (3 s), the response size (1 MiB by default, counted after decompression; callers
  pass a cap per purpose, e.g. 64 KiB for an agent card) and the total time.

``Fetcher.derive`` makes the fetcher for one discovery source: its ``allowCIDRs`` (the cluster's pod and
service ranges) admit private addresses in those ranges only — never loopback, link-local, multicast or a
tunnelled form, whatever the range says, since a source is configured through the API and must not reach the
node or the metadata service — and its mTLS client certificate and CA bundle. Each answer over TLS carries
the server's certificate (``FetchResponse.peer_cert``), so the caller can read the peer's SPIFFE ID.

Anything refused or failed raises ``FetchError``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

MIB = 1024 * 1024
MAX_REDIRECTS = 3
CONNECT_TIMEOUT_S = 3.0
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_SOURCE_ADMITS = frozenset({"a private address", "a reserved or non-public address"})

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
    peer_cert: bytes | None = None  # the server's certificate (DER) when it answered over TLS


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


def _source_may_reach(ip: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    """A source's CIDRs admit private and shared (CGNAT: some clusters put pods there) addresses only."""
    if not any(ip.version == n.version and ip in n for n in networks):
        return False
    why = refusal(ip)
    if why is None:
        return True
    special = ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved
    return why in _SOURCE_ADMITS and not special and ip not in _THIS_NETWORK


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

    Error = FetchError  # for callers that get a Fetcher passed in and may not import this module

    def __init__(
        self,
        allow: str = "",
        *,
        max_bytes: int = MIB,
        resolve: Resolver | None = None,
        verify: ssl.SSLContext | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.allow = AllowList.parse(allow)
        self.max_bytes = max_bytes
        self.connect_timeout = connect_timeout
        self.source_networks: tuple[IPNetwork, ...] = ()
        self._resolve = resolve or _system_resolve
        self._verify: ssl.SSLContext | bool = verify if verify is not None else True

    def derive(
        self,
        *,
        allow_cidrs: Sequence[str] = (),
        client_cert: str | None = None,
        client_key: str | None = None,
        ca_file: str | None = None,
    ) -> Fetcher:
        """This fetcher for one source: its CIDRs (private ranges only, see above), its mTLS client
        certificate and key (PEM files) and the CA bundle its agents' server certificates chain to.

        With a client certificate and a CA bundle the peer is authenticated the SPIFFE way: its certificate
        must chain to that bundle, and the caller checks the SPIFFE ID in its URI SAN instead of a DNS name
        (an X.509 SVID usually carries no DNS name, and agents are reached by pod or service address).
        Without a bundle the usual CAs and the hostname check apply."""
        derived = Fetcher.__new__(Fetcher)
        derived.allow = self.allow
        derived.max_bytes = self.max_bytes
        derived.connect_timeout = self.connect_timeout
        derived._resolve = self._resolve
        try:
            networks = tuple(ipaddress.ip_network(c, strict=False) for c in allow_cidrs)
        except ValueError as exc:
            raise ValueError(f"allowCIDRs: {exc}") from None
        derived.source_networks = self.source_networks + networks
        derived._verify = self._verify
        if client_cert is not None or ca_file is not None:
            context = self._context(ca_file)
            if client_cert is not None:
                context.load_cert_chain(client_cert, client_key)
            if client_cert is not None and ca_file is not None:
                # SPIFFE: the peer must chain to the bundle (the agents' CA only, not public CAs), and the
                # caller checks its SPIFFE ID instead of a DNS name; with public CAs the name is checked.
                context.check_hostname = False
            derived._verify = context
        return derived

    def _context(self, ca_file: str | None) -> ssl.SSLContext:
        if ca_file is not None:
            return ssl.create_default_context(cafile=ca_file)
        context = ssl.create_default_context()
        if isinstance(self._verify, ssl.SSLContext):
            # Keep the CAs this fetcher was built with (a context cannot be copied, only its roots).
            for der in self._verify.get_ca_certs(binary_form=True):
                context.load_verify_locations(cadata=ssl.DER_cert_to_PEM_cert(der))
        return context

    def _trusted(self, ip: IPAddress) -> bool:
        return self.allow.covers(ip) or _source_may_reach(ip, self.source_networks)

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
        if parsed.scheme != "https" and not named and not (self.allow.networks or self.source_networks):
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
        trusted = named or all(self._trusted(ip) for ip in addresses)
        if parsed.scheme != "https" and not trusted:
            raise FetchError(f"{_origin(url)}: only https URLs are fetched (unless the host is allow-listed)")
        for ip in addresses:
            why = None if named or self._trusted(ip) else refusal(ip)
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
                    trust_env=False,
                    follow_redirects=False,
                    verify=self._verify,
                    timeout=httpx.Timeout(None, connect=self.connect_timeout),
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
                peer = _peer_certificate(response)
                return FetchResponse(response.status_code, answer, b"".join(chunks), url, peer)
        except httpx.ConnectTimeout:
            raise FetchError(f"{_origin(url)}: no connection within {self.connect_timeout:g} s") from None
        except (httpx.HTTPError, OSError) as exc:
            raise FetchError(f"{_origin(url)}: {type(exc).__name__}: {exc or 'failed'}") from None


def _peer_certificate(response: httpx.Response) -> bytes | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der


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
