"""Knative's delivery rules (EV pkg/kncloudevents/retries.go): attempts, backoff, what is retried.

A DeliverySpec gives `retry` (attempts = retry + 1), `backoffPolicy` and `backoffDelay`; the wait
before retry k (k = 0 for the first retry) is `delay * 2**k` when exponential and `delay * k`
when linear. Without a policy or a delay there is no wait. Which answers are retried at all is
Knative's rule, `core/contract.is_retried`, which the reporter shares.
"""

from __future__ import annotations

from dataclasses import dataclass

EXPONENTIAL = "exponential"
LINEAR = "linear"
POLICIES = (EXPONENTIAL, LINEAR)

# The cluster default (config-br-defaults) when a Broker names no delivery at all.
DEFAULT_RETRY = 10
DEFAULT_POLICY = EXPONENTIAL
DEFAULT_DELAY_SECONDS = 0.2

# Knative sets no per-attempt timeout by default; locally a hung subscriber must not hold an
# in-flight slot forever, so an attempt without `timeout` gives up after this many seconds.
LOCAL_ATTEMPT_TIMEOUT_SECONDS = 300.0


def backoff_seconds(policy: str | None, delay: float | None, retry_number: int) -> float:
    """The wait before retry `retry_number` (0 for the first retry)."""
    if not policy or not delay:
        return 0.0
    if policy == EXPONENTIAL:
        return float(delay * (2**retry_number))
    if policy == LINEAR:
        return float(delay * retry_number)
    raise ValueError(f"unknown backoff policy {policy!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """The effective retry behaviour of one subscription."""

    retry: int = 0
    backoff_policy: str | None = None
    backoff_delay: float | None = None
    timeout: float | None = None

    @property
    def attempts(self) -> int:
        return self.retry + 1

    def wait_before(self, retry_number: int) -> float:
        return backoff_seconds(self.backoff_policy, self.backoff_delay, retry_number)

    def attempt_timeout(self) -> float:
        return self.timeout if self.timeout else LOCAL_ATTEMPT_TIMEOUT_SECONDS

    def schedule(self) -> list[float]:
        """Every wait, in order: what a subscriber that always fails will see."""
        return [self.wait_before(k) for k in range(self.retry)]


CLUSTER_DEFAULT = RetryPolicy(DEFAULT_RETRY, DEFAULT_POLICY, DEFAULT_DELAY_SECONDS)
