"""The lifecycle of one alert (one rule on one series), as Prometheus defines it.

    inactive --condition--> pending --held for `for`--> firing --condition gone--> resolved
                              |                                 (after keep_firing_for)
                              +--condition gone--> inactive

`step` applies one observation (a sample time and a value) to the state and says what happened.
It is pure: the caller loads the state under a row lock and persists the result. Sample times
drive `for` and `keep_firing_for`, so a redelivered or replayed batch evaluates the same way;
the wall clock (`now`) drives only repeat notifications. An observation older than the last one
evaluated is late and changes nothing (late samples must not resolve a newer alert); one at the
same time is a replacement (a window's figure recomputed once late labels came in) and is
judged again: its new value can fire or resolve.

`expire` is what time alone does, on the schedule's tick: an open alert whose rule has judged
nothing new for `stale_after` ends, and a firing one repeats every `repeat_interval`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from modelstats.alert.rules import AnyRule, Rule

State = Literal["inactive", "pending", "firing"]
Kind = Literal["pending", "firing", "repeat", "resolved", "inactive"]
NOTIFYING: frozenset[str] = frozenset({"firing", "repeat", "resolved"})


@dataclass
class AlertState:
    state: State = "inactive"
    alert_id: int | None = None
    active_since: datetime | None = None
    fired_at: datetime | None = None
    last_true_at: datetime | None = None
    last_eval_at: datetime | None = None
    last_notified_at: datetime | None = None


@dataclass(frozen=True)
class Change:
    kind: Kind
    from_state: State
    to_state: State
    at: datetime
    value: float

    @property
    def notifies(self) -> bool:
        return self.kind in NOTIFYING


def step(
    state: AlertState, rule: AnyRule, at: datetime, value: float | None, now: datetime
) -> Change | None:
    """Apply one observation to `state` (in place); return the change, if any.

    `value` None means the rule could not be evaluated (fewer than `min_samples` in the
    window): nothing changes.
    """
    if value is None:
        return None
    if state.last_eval_at is not None and at < state.last_eval_at:
        return None
    state.last_eval_at = at
    before = state.state
    if rule.holds(value):
        state.last_true_at = at
        if before == "inactive":
            state.active_since = at
            if rule.for_ > timedelta(0):
                state.state = "pending"
                return Change("pending", before, "pending", at, value)
            return _fire(state, before, at, value, now)
        if before == "pending":
            assert state.active_since is not None
            if at - state.active_since >= rule.for_:
                return _fire(state, before, at, value, now)
            return None
        return _repeat(state, rule, at, value, now)
    if before == "pending":
        _clear(state)
        return Change("inactive", before, "inactive", at, value)
    if before == "firing":
        if (
            rule.keep_firing_for
            and state.last_true_at is not None
            and at - state.last_true_at < rule.keep_firing_for
        ):
            return _repeat(state, rule, at, value, now)
        _clear(state)
        return Change("resolved", before, "inactive", at, value)
    return None


def expire(state: AlertState, rule: Rule, value: float, now: datetime) -> Change | None:
    """Time passing over an open alert of a threshold rule; `value` is its last value.

    Its series is stale once `stale_after` has passed since the last sample the rule judged
    (sample time against the wall clock): the alert ends at that moment, or when its
    `keep_firing_for` ends if that is later (firing resolves, pending goes back to inactive),
    as Prometheus ends an alert whose series stopped. Until then a firing alert repeats."""
    if state.state == "inactive" or state.last_eval_at is None:
        return None
    ends_at = state.last_eval_at + rule.stale_after
    if state.state == "firing" and rule.keep_firing_for and state.last_true_at is not None:
        ends_at = max(ends_at, state.last_true_at + rule.keep_firing_for)
    if now >= ends_at:
        return end(state, ends_at, value)
    if state.state == "firing":
        return _repeat(state, rule, state.last_eval_at, value, now)
    return None


def end(state: AlertState, at: datetime, value: float) -> Change | None:
    """End the open episode, if any: firing resolves, pending goes back to inactive."""
    before = state.state
    if before == "inactive":
        return None
    _clear(state)
    return Change("resolved" if before == "firing" else "inactive", before, "inactive", at, value)


def _fire(state: AlertState, before: State, at: datetime, value: float, now: datetime) -> Change:
    state.state = "firing"
    state.fired_at = at
    state.last_notified_at = now
    return Change("firing", before, "firing", at, value)


def _repeat(
    state: AlertState, rule: AnyRule, at: datetime, value: float, now: datetime
) -> Change | None:
    if state.last_notified_at is None or now - state.last_notified_at >= rule.repeat_interval:
        state.last_notified_at = now
        return Change("repeat", "firing", "firing", at, value)
    return None


def _clear(state: AlertState) -> None:
    state.state = "inactive"
    state.active_since = None
    state.fired_at = None
    state.last_true_at = None
    state.last_notified_at = None
    # alert_id is cleared by the caller once the change is recorded against the alert.
