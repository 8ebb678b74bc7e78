"""The SSRF-hardened fetcher against a real server on 127.0.0.1, and its refusals without one.

Refusals happen before any connection, so those tests need no network. The local server is reachable only
because each test puts 127.0.0.1 (or a name resolved to it) on the allow-list, as an operator would.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from agentreg.config import Settings
from agentreg.services import fetcher
from agentreg.services.fetcher import Fetcher, FetchError, refusal
from tests.services.local_http import self_signed, serve


def resolver(answers: dict[str, list[str]]) -> fetcher.Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"no such host {host}")
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://100.64.0.1/", "non-public"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::1]/", "loopback"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[::ffff:127.0.0.1]/", "IPv4-mapped"),
        ("https://[64:ff9b::a00:1]/", "NAT64"),
        ("https://224.0.0.1/", "multicast"),
        ("https://localhost/", "loopback"),  # by name: resolved first, then refused
        ("https://internal.example/", "private"),
        ("https://mixed.example/", "private"),  # one bad answer among good ones is enough
        ("http://8.8.8.8/", "only https"),
        ("http://public.example/", "only https"),
        ("ftp://public.example/", "http(s)"),
        ("https://user:pw@public.example/", "credentials"),
        ("https://nosuch.example/", "cannot resolve"),
    ],
)
async def test_refused_without_an_allow_list(url: str, why: str) -> None:
    answers = {
        "localhost": ["127.0.0.1"],
        "internal.example": ["10.0.0.5"],
        "mixed.example": ["93.184.216.34", "192.168.1.1"],
        "public.example": ["93.184.216.34"],
    }
    with pytest.raises(FetchError) as caught:
        await Fetcher("", resolve=resolver(answers)).check(url)
    assert why in str(caught.value)


async def test_the_real_resolver_is_checked_too() -> None:
    with pytest.raises(FetchError, match="loopback"):
        await Fetcher("").post_json("https://localhost:1/x", {}, 2)


async def test_a_checked_address_is_pinned_with_the_host_header_and_tls_name() -> None:
    fetch = Fetcher("", resolve=resolver({"hook.example": ["93.184.216.34"]}))
    target = await fetch.check("https://hook.example:8443/check?x=1")
    assert str(target.url) == "https://93.184.216.34:8443/check?x=1"
    assert (target.host_header, target.sni) == ("hook.example:8443", "hook.example")
    literal = await fetch.check("https://[2606:4700::1111]/x")
    assert (literal.host_header, literal.sni) == ("[2606:4700::1111]", None)


async def test_the_allow_list_admits_hosts_by_name_and_by_cidr() -> None:
    answers = {"hook.internal": ["10.0.0.5"], "other.internal": ["10.9.0.1"]}
    by_name = Fetcher("hook.internal", resolve=resolver(answers))
    assert str((await by_name.check("http://hook.internal/x")).url) == "http://10.0.0.5/x"
    with pytest.raises(FetchError):
        await by_name.check("http://other.internal/x")
    by_cidr = Fetcher("10.0.0.0/16, 192.168.1.1", resolve=resolver(answers))
    assert str((await by_cidr.check("http://hook.internal/x")).url) == "http://10.0.0.5/x"
    assert (await by_cidr.check("https://192.168.1.1/x")).sni is None
    with pytest.raises(FetchError):
        await by_cidr.check("https://other.internal/x")


def test_a_bad_allow_list_entry_stops_startup() -> None:
    with pytest.raises(ValueError, match="AGENTREG_FETCH_ALLOW"):
        Fetcher("hook.internal, not a host!")


def test_public_addresses_are_fine() -> None:
    assert refusal(ipaddress.ip_address("93.184.216.34")) is None
    assert refusal(ipaddress.ip_address("2606:4700::1111")) is None
    assert refusal(ipaddress.ip_address("64:ff9b::808:808")) is None  # NAT64 of 8.8.8.8


async def test_post_json_against_a_real_server() -> None:
    with serve() as server:
        status, answer = await Fetcher("127.0.0.1").post_json(f"{server.base}/allow", {"a": [1, "ü"]}, 2)
    assert (status, answer) == (200, {"allowed": True, "reason": "looks fine"})
    seen = server.seen[0]
    assert (seen.method, seen.path, seen.json()) == ("POST", "/allow", {"a": [1, "ü"]})
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["content-type"] == "application/json"


async def test_non_2xx_and_non_json_answers() -> None:
    fetch = Fetcher("127.0.0.1")
    with serve() as server:
        assert await fetch.post_json(f"{server.base}/status/503", {}, 2) == (503, {"error": "nope"})
        with pytest.raises(FetchError, match="not JSON"):
            await fetch.post_json(f"{server.base}/text", {}, 2)


async def test_time_and_size_limits() -> None:
    fetch = Fetcher("127.0.0.1", max_bytes=1024 * 1024)
    with serve() as server:
        with pytest.raises(FetchError, match=r"within 0\.3 s"):
            await fetch.post_json(f"{server.base}/slow?s=2", {}, 0.3)
        with pytest.raises(FetchError, match="limit"):
            await fetch.get(f"{server.base}/big")
        with pytest.raises(FetchError, match="more than"):
            await fetch.get(f"{server.base}/chunked-big")
        small = await fetch.get(f"{server.base}/big?n=1000")
    assert (small.status, len(small.body)) == (200, 1000)


async def test_redirects_are_bounded_and_each_is_checked() -> None:
    fetch = Fetcher("127.0.0.1")
    with serve() as server:
        followed = await fetch.get(f"{server.base}/redirect?to=/allow")
        assert (followed.status, followed.url) == (200, f"{server.base}/allow")
        with pytest.raises(FetchError, match="link-local"):
            await fetch.get(f"{server.base}/redirect?to=https://169.254.169.254/latest/meta-data/")
        with pytest.raises(FetchError, match="more than 3 redirect"):
            await fetch.get(f"{server.base}/loop")
        not_followed = await fetch.post_json(f"{server.base}/redirect?to=/allow", {}, 2)
    assert not_followed[0] == 302
    assert [s.path for s in server.seen if s.path.startswith("/allow")] == ["/allow"]


async def test_proxy_settings_from_the_environment_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:9")
    with serve() as server:
        status, _ = await Fetcher("127.0.0.1").post_json(f"{server.base}/allow", {}, 2)
    assert status == 200


async def test_https_connects_to_the_pinned_address_and_verifies_the_name(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed("hook.test", tmp_path)
    with serve(server_tls) as server:
        # hook.test is on the allow-list by name and resolves to 127.0.0.1; TLS still checks the name.
        fetch = Fetcher("hook.test", resolve=resolver({"hook.test": ["127.0.0.1"]}), verify=client_tls)
        status, answer = await fetch.post_json(f"https://hook.test:{server.port}/deny", {}, 3)
        assert (status, answer["allowed"]) == (200, False)
        assert server.seen[-1].headers["host"] == f"hook.test:{server.port}"
        wrong_name = Fetcher("other.test", resolve=resolver({"other.test": ["127.0.0.1"]}), verify=client_tls)
        with pytest.raises(FetchError):
            await wrong_name.post_json(f"https://other.test:{server.port}/allow", {}, 3)


def test_the_default_fetcher_follows_the_settings() -> None:
    from agentreg.api.app import create_app

    before = fetcher.default()
    try:
        create_app(Settings(fetch_allow="10.0.0.0/8"))
        assert fetcher.default().allow.covers(ipaddress.ip_address("10.1.2.3"))
        assert Settings.from_env({"AGENTREG_FETCH_ALLOW": "hook.internal"}).fetch_allow == "hook.internal"
    finally:
        fetcher.install(before)


# --- one source's fetcher: its CIDRs, its mTLS client certificate, the peer's certificate -----------------


async def test_a_sources_cidrs_admit_private_addresses_in_them_only() -> None:
    answers = {"pod.cluster": ["10.42.0.7"], "svc.cluster": ["100.64.3.4"], "node.cluster": ["10.43.0.1"]}
    base = Fetcher("", resolve=resolver(answers))
    derived = base.derive(
        allow_cidrs=("10.42.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "::/0")
    )
    assert str((await derived.check("http://pod.cluster:8080/x")).url) == "http://10.42.0.7:8080/x"
    assert str((await derived.check("https://svc.cluster/x")).url) == "https://100.64.3.4/x"
    for url, why in [
        ("http://node.cluster/x", "only https"),  # outside the ranges
        ("https://node.cluster/x", "private"),
        ("https://127.0.0.1/x", "loopback"),  # listed, but never admitted for a source
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::ffff:10.42.0.7]/x", "IPv4-mapped"),
        ("https://[::1]/x", "loopback"),
    ]:
        with pytest.raises(FetchError, match=why):
            await derived.check(url)
    with pytest.raises(FetchError, match="private"):
        await base.check("https://pod.cluster/x")  # the base fetcher is unchanged
    with pytest.raises(ValueError, match="allowCIDRs"):
        base.derive(allow_cidrs=("not-a-cidr",))


async def test_mtls_presents_the_client_certificate_and_captures_the_peers(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("hook.test").configure_cert(server_tls)
    server_tls.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_tls)
    client_pem = tmp_path / "client.pem"
    ca.issue_cert("agentreg@registry.test").private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    base = Fetcher("hook.test", resolve=resolver({"hook.test": ["127.0.0.1"]}), verify=client_tls)
    with serve(server_tls) as server:
        url = f"https://hook.test:{server.port}/allow"
        with pytest.raises(FetchError):
            await base.get(url, timeout=3)  # no client certificate: the server refuses the handshake
        derived = base.derive(client_cert=str(client_pem))  # keeps the base fetcher's CAs
        answer = await derived.get(url, timeout=3)
    assert answer.status == 200 and answer.peer_cert is not None
    names = x509.load_der_x509_certificate(answer.peer_cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert names.value.get_values_for_type(x509.DNSName) == ["hook.test"]
    with serve() as plain:
        assert (await Fetcher("127.0.0.1").get(f"{plain.base}/allow")).peer_cert is None


async def test_a_connection_that_never_completes_gives_up_after_the_connect_timeout() -> None:
    with socket.socket() as listener:  # accepts TCP but never answers the TLS handshake
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        fetch = Fetcher("hook.test", resolve=resolver({"hook.test": ["127.0.0.1"]}), connect_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"no connection within 0\.3 s"):
            await fetch.get(f"https://hook.test:{port}/x", timeout=5)
    assert time.monotonic() - started < 2
    assert Fetcher().connect_timeout == 3.0
