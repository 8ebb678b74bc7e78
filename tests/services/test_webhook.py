"""The admission webhook against a real HTTP server on 127.0.0.1: allow, deny, timeout, fail open/closed.

127.0.0.1 is on the fetcher's allow-list here, as an operator would put an in-cluster webhook there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentreg.domain.policy import Effect, Outcome, Phase, Policy, parse_policy
from agentreg.services import fetcher
from agentreg.services.fetcher import Fetcher
from agentreg.services.governance import run_webhook
from tests.services.local_http import LocalServer, serve

LOCAL = Fetcher("127.0.0.1")
PAYLOAD: dict[str, Any] = {
    "tenant": "acme",
    "ref": "agent/com.acme/bot@1.0.0",
    "document": {"kind": "Agent", "metadata": {"name": "bot"}},
}


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serve() as running:
        yield running


def webhook(url: str, **options: Any) -> Policy:
    return parse_policy(
        {"apiVersion": "agentreg.dev/v1", "kind": "Policy", "spec": {"webhook": {"url": url, **options}}}
    )


async def test_allow_sends_the_document_and_passes(server: LocalServer) -> None:
    result = await run_webhook(webhook(f"{server.base}/allow"), Phase.PUBLISH, PAYLOAD, fetch=LOCAL)
    assert result is not None
    assert (result.id, result.effect, result.result, result.message) == (
        "webhook",
        Effect.HARD,
        Outcome.PASS,
        "looks fine",
    )
    assert server.seen[0].json() == {**PAYLOAD, "phase": "publish"}


async def test_deny_fails_with_the_webhooks_reason(server: LocalServer) -> None:
    payload = {**PAYLOAD, "targetState": "certified"}
    result = await run_webhook(webhook(f"{server.base}/deny"), Phase.PROMOTE, payload, fetch=LOCAL)
    assert result is not None
    assert (result.result, result.message) == (Outcome.FAIL, "CVE-2026-1234 is not fixed")
    assert server.seen[0].json()["targetState"] == "certified"


@pytest.mark.parametrize(
    ("path", "timeout_ms", "error"),
    [
        ("/slow?s=3", 300, "within 0.3 s"),
        ("/status/500", 5000, "answered 500"),
        ("/status/302", 5000, "answered 302"),
        ("/text", 5000, "not JSON"),
        ("/shape", 5000, 'no boolean "allowed"'),
    ],
)
@pytest.mark.parametrize("failure", ["open", "closed"])
async def test_an_unanswered_webhook_follows_the_failure_mode(
    server: LocalServer, path: str, timeout_ms: int, error: str, failure: str
) -> None:
    policy = webhook(f"{server.base}{path}", timeoutMs=timeout_ms, failure=failure)
    result = await run_webhook(policy, Phase.PUBLISH, PAYLOAD, fetch=LOCAL)
    assert result is not None
    assert result.result is (Outcome.WARN if failure == "open" else Outcome.FAIL)
    assert f"failure: {failure}" in result.message and error in result.message


@pytest.mark.parametrize("failure", ["open", "closed"])
async def test_a_webhook_nobody_listens_on(failure: str) -> None:
    with serve() as gone:
        url = f"{gone.base}/allow"
    result = await run_webhook(webhook(url, failure=failure), Phase.PUBLISH, PAYLOAD, fetch=LOCAL)
    assert result is not None and result.result is (Outcome.WARN if failure == "open" else Outcome.FAIL)


async def test_a_private_webhook_is_refused_without_the_allow_list(server: LocalServer) -> None:
    result = await run_webhook(webhook(f"{server.base}/allow"), Phase.PUBLISH, PAYLOAD, fetch=Fetcher(""))
    assert result is not None and result.result is Outcome.FAIL
    assert server.seen == []  # refused before connecting


async def test_no_webhook_for_the_phase_means_no_call(server: LocalServer) -> None:
    publish_only = webhook(f"{server.base}/deny", phases=["publish"])
    assert await run_webhook(publish_only, Phase.PROMOTE, PAYLOAD, fetch=LOCAL) is None
    assert await run_webhook(Policy(), Phase.PUBLISH, PAYLOAD, fetch=LOCAL) is None
    assert server.seen == []


async def test_the_process_wide_fetcher_is_used_by_default(server: LocalServer) -> None:
    before = fetcher.default()
    try:
        fetcher.configure("127.0.0.1")
        result = await run_webhook(webhook(f"{server.base}/allow"), Phase.PUBLISH, PAYLOAD)
    finally:
        fetcher.install(before)
    assert result is not None and result.result is Outcome.PASS
