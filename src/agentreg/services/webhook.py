"""The tenant's external admission webhook: asked before a publish or a promotion is accepted.

Called outside any transaction (it is network I/O): read the policy, call the webhook, then open the write
transaction. The webhook gets ``{phase, tenant, ref, targetState?, document}`` and answers
``{allowed: bool, reason: str}``. When it cannot answer (timeout, connection error, a non-2xx status, an
answer of another shape), the policy's ``failure`` decides: ``closed`` denies, ``open`` admits with a warning.
"""

from __future__ import annotations

import logging
from typing import Any

from agentreg.domain.policy import Effect, Outcome, Phase, Policy, RuleResult
from agentreg.services import fetcher
from agentreg.services.fetcher import Fetcher, FetchError

RULE_ID = "webhook"
MAX_REASON = 500
log = logging.getLogger(__name__)


async def run_webhook(
    policy: Policy, phase: Phase, payload: dict[str, Any], *, fetch: Fetcher | None = None
) -> RuleResult | None:
    """The webhook's verdict as a rule result; None when the policy has no webhook for ``phase``."""
    webhook = policy.webhook
    if webhook is None or phase not in webhook.phases:
        return None
    client = fetch or fetcher.default()
    try:
        status, answer = await client.post_json(
            webhook.url, {**payload, "phase": phase.value}, webhook.timeout_ms / 1000
        )
    except FetchError as exc:
        return _unanswered(webhook.fail_open, str(exc))
    if not 200 <= status < 300:
        return _unanswered(webhook.fail_open, f"it answered {status}")
    if not isinstance(answer, dict) or not isinstance(answer.get("allowed"), bool):
        return _unanswered(webhook.fail_open, 'its answer has no boolean "allowed"')
    reason = answer.get("reason")
    reason = reason[:MAX_REASON] if isinstance(reason, str) and reason.strip() else ""
    if answer["allowed"]:
        return RuleResult(RULE_ID, Effect.HARD, Outcome.PASS, reason or "allowed by the admission webhook")
    return RuleResult(RULE_ID, Effect.HARD, Outcome.FAIL, reason or "denied by the admission webhook")


def _unanswered(fail_open: bool, error: str) -> RuleResult:
    log.warning("admission webhook failed: %s", error)
    if fail_open:
        return RuleResult(
            RULE_ID,
            Effect.HARD,
            Outcome.WARN,
            f"the admission webhook failed; admitted anyway (failure: open): {error}",
        )
    return RuleResult(
        RULE_ID,
        Effect.HARD,
        Outcome.FAIL,
        f"the admission webhook failed (failure: closed): {error}",
    )
