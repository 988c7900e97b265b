"""What the broker says and keeps when a delivery fails: the log line, and the dead letter.

A dead letter is the event as it was delivered plus Knative's extensions: `knativeerrordest`
(the URL that failed), `knativeerrorcode` (the status; 0 here when there was none, a network
error) and `knativeerrordata` (the response body, base64, at most 1024 characters; the error
text for a network error).
"""

from __future__ import annotations

import base64
import logging

from modelstats.core import contract
from modelstats.core.cloudevents import Envelope
from modelstats.local.broker.routing import Subscription
from modelstats.local.broker.sender import DeliveryResult

log = logging.getLogger("modelstats.broker")

ERROR_DATA_MAX_CHARS = 1024


def dead_letter(envelope: Envelope, failed_url: str, result: DeliveryResult) -> Envelope:
    body = result.body if result.status is not None else result.error.encode()
    # base64 of at most 768 bytes is at most 1024 characters.
    data = base64.b64encode(body[: ERROR_DATA_MAX_CHARS // 4 * 3]).decode() if body else None
    return envelope.with_attributes(
        **{
            contract.ERROR_DEST: failed_url,
            contract.ERROR_CODE: str(result.status or 0),
            contract.ERROR_DATA: data,
        }
    )


def log_failure(
    subscription: Subscription,
    envelope: Envelope,
    result: DeliveryResult,
    attempt: int,
    retry_in: float | None,
) -> None:
    """One line per failed attempt: retried, out of attempts, or permanent (never retried)."""
    what = f"event {envelope.label()} -> trigger {subscription.name}"
    attempts = subscription.policy.attempts
    if retry_in is not None:
        log.warning(
            "%s: attempt %d/%d failed: %s; retry in %gs",
            what,
            attempt,
            attempts,
            result.describe(),
            retry_in,
        )
    elif contract.is_retried(result.status):
        log.warning(
            "%s: attempt %d/%d failed: %s; no attempts left",
            what,
            attempt,
            attempts,
            result.describe(),
        )
    else:
        log.warning("%s: not retried: %s is permanent: %s", what, result.status, result.reason())
