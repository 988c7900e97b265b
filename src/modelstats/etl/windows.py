"""Time windows of inference records: alignment, when a window is closed, and its figures.

Windows are aligned to the Unix epoch in UTC: with a width of 1m, [12:00:00, 12:01:00) and so
on. A window is closed once its end is at or before the horizon, the later of the newest record
time and now, minus the lateness allowance; since windows are aligned, every record with a time
before `cutoff(horizon)` belongs to a closed window, and the rest to open ones.

Figures of one model and version in one window:
- `requests`: the number of records;
- `prediction_accuracy`: the share of records whose prediction equals their label, over the
  records that have a label (absent when none has);
- `inference_time`: the mean of `latency_ms`;
- `inference_time_p95`: the nearest-rank 95th percentile of `latency_ms`: the smallest value
  such that at least 95% of the values are at or below it, i.e. the ceil(0.95 * n)-th smallest.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelstats.etl.records import Record

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

GroupKey = tuple[datetime, str, str]  # window start, model, version


def start_of(moment: datetime, width: timedelta) -> datetime:
    """The start of the window holding `moment`."""
    return EPOCH + ((moment - EPOCH) // width) * width


def cutoff(horizon: datetime, width: timedelta) -> datetime:
    """Records before this time are in windows that end at or before `horizon`."""
    return start_of(horizon, width)


def horizon(newest: datetime | None, now: datetime, lateness: timedelta) -> datetime:
    return max(newest, now) - lateness if newest is not None else now - lateness


def nearest_rank(values: Sequence[float], percent: int) -> float:
    """The ceil(percent / 100 * n)-th smallest value (at least the first) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-percent * len(ordered) // 100))  # integer ceil: no rounding surprises
    return ordered[rank - 1]


def figures(records: Sequence[Record]) -> dict[str, float]:
    """The metrics of one window of one model and version (drift aside: see psi)."""
    latencies = [r.latency_ms for r in records]
    result = {
        "requests": float(len(records)),
        "inference_time": math.fsum(latencies) / len(latencies),
        "inference_time_p95": nearest_rank(latencies, 95),
    }
    labelled = [r.correct for r in records if r.correct is not None]
    if labelled:
        result["prediction_accuracy"] = sum(labelled) / len(labelled)
    return result


def group(records: Iterable[Record], width: timedelta) -> dict[GroupKey, list[Record]]:
    """Records by window, model and version, in order of window start, model, version."""
    groups: dict[GroupKey, list[Record]] = defaultdict(list)
    for record in records:
        groups[(start_of(record.time, width), record.model, record.version)].append(record)
    return dict(sorted(groups.items(), key=lambda item: item[0]))


@dataclass
class Batch:
    """The groups that fit in one event, and what is left for the next run."""

    groups: dict[GroupKey, list[Record]]
    left: list[Record]
    # Every window starting before this is in `groups`; None if all closed windows fit.
    resume_at: datetime | None
    truncated: int = 0  # groups dropped from a single window larger than the cap


def limit(groups: dict[GroupKey, list[Record]], cap: int) -> Batch:
    """Whole windows, oldest first, as long as their groups fit in `cap` reports."""
    taken: dict[GroupKey, list[Record]] = {}
    by_window: dict[datetime, list[GroupKey]] = defaultdict(list)
    for key in groups:
        by_window[key[0]].append(key)
    for start in sorted(by_window):
        keys = by_window[start]
        if len(taken) + len(keys) > cap:
            if taken:
                left = [r for key, rs in groups.items() if key[0] >= start for r in rs]
                return Batch(taken, left, start)
            # One window alone exceeds the cap: report what fits rather than nothing, forever.
            taken = {key: groups[key] for key in keys[:cap]}
            rest = [key for key in groups if key[0] > start]
            resume = min((key[0] for key in rest), default=None)
            left = [r for key in rest for r in groups[key]]
            return Batch(taken, left, resume, truncated=len(keys) - cap)
        taken.update({key: groups[key] for key in keys})
    return Batch(taken, [], None)
