"""Six hours of a monitored fraud model, written straight into the store as the etl's inference
job writes its figures (no tests here): samples at each 5-minute window's start, labelled
`source=inference`, per window (`requests`, `rows`, `drift_rows_short`, `drift_share`,
`dataset_drift`, `label_coverage`, `prediction_accuracy`) and per column (`feature_drift`,
`feature_drifted` with `feature` and `method`).

The story, by window (0 is the oldest of 72):
- 0-5: no reference yet (profiles only); 6 is the reference itself (every p-value 1);
- `amount` (ks) drifts in 40-59 (p-values far below 0.05); `country` (chisquare) gets a new
  category from 50 on; `tenure` (ks) comes close (p-values from 0.06 to 0.09) in 20-29 and
  drifts once (window 25); `age` (ks) never moves; the prediction (z) drifts in 45-59;
- 30 has too few rows (`drift_rows_short` 1, no verdict);
- accuracy falls from about 0.95 to about 0.6 while `amount` drifts; the labels of the last
  hour are still coming (coverage below 1, the last two windows none at all).
A metric-only model (Mistral v1) reports prediction_accuracy itself, and a DatasetDrift alert
fires on fraud v1. `planted` keeps every figure written, so tests compute what to expect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.stats.samples import Sample, add_samples
from tests.stats.scenario import add_alert

MODEL, VERSION = "fraud", "v1"
WINDOW = timedelta(minutes=5)
WINDOWS = 72
SOURCE = {"source": "inference"}
FEATURES = {"amount": "ks", "country": "chisquare", "tenure": "ks", "age": "ks"}
PREDICTION_METHOD = "z"
NO_REFERENCE = range(0, 6)
REFERENCE = 6
ROWS_SHORT = 30
AMOUNT_DRIFT = range(40, 60)
COUNTRY_DRIFT = range(50, WINDOWS)
TENURE_CLOSE = range(20, 30)
TENURE_DRIFT = 25
PREDICTION_DRIFT = range(45, 60)
LABELLED_UNTIL = 60  # windows from here on still wait for labels
UNLABELLED = range(WINDOWS - 2, WINDOWS)


@dataclass
class InferenceScenario:
    now: datetime
    starts: list[datetime]  # each window's start, oldest first
    planted: list[Sample] = field(default_factory=list)

    def since(self) -> datetime:
        return self.starts[0]

    def until(self) -> datetime:
        return self.starts[-1] + WINDOW

    def value(self, metric: str, window: int, **labels: str) -> float | None:
        """The figure planted for one window, or None."""
        wanted = (MODEL, VERSION, metric, {**SOURCE, **labels}, self.starts[window])
        for sample in self.planted:
            if sample[:5] == wanted:
                return sample[5]
        return None


def _p_value(feature: str, window: int) -> float:
    """The planted figure of a column in a judged window."""
    wave = 0.5 + 0.4 * math.sin(window * 1.7 + len(feature))  # 0.1 .. 0.9: unmoved
    if window == REFERENCE:
        return 1.0
    if feature == "amount" and window in AMOUNT_DRIFT:
        return 10.0 ** -(3 + (window - AMOUNT_DRIFT.start) % 5)
    if feature == "country" and window in COUNTRY_DRIFT:
        return 1e-6
    if feature == "tenure" and window == TENURE_DRIFT:
        return 0.02
    if feature == "tenure" and window in TENURE_CLOSE:
        return 0.06 + 0.003 * (window - TENURE_CLOSE.start)
    if feature == "prediction" and window in PREDICTION_DRIFT:
        return 0.001
    return wave


def _window_samples(window: int, start: datetime) -> list[Sample]:
    rows = 40.0 if window == ROWS_SHORT else 600.0 + 10 * (window % 7)
    found: list[Sample] = [
        (MODEL, VERSION, "requests", SOURCE, start, rows / 2),
        (MODEL, VERSION, "rows", SOURCE, start, rows),
    ]
    if window in NO_REFERENCE:
        return found
    short = window == ROWS_SHORT
    found.append((MODEL, VERSION, "drift_rows_short", SOURCE, start, float(short)))
    if short:
        return found
    drifted = 0
    for feature, method in FEATURES.items():
        figure = _p_value(feature, window)
        labels = {**SOURCE, "feature": feature, "method": method}
        found.append((MODEL, VERSION, "feature_drift", labels, start, figure))
        found.append((MODEL, VERSION, "feature_drifted", labels, start, float(figure < 0.05)))
        drifted += figure < 0.05
    labels = {**SOURCE, "feature": "prediction", "method": PREDICTION_METHOD}
    figure = _p_value("prediction", window)
    found.append((MODEL, VERSION, "feature_drift", labels, start, figure))
    found.append((MODEL, VERSION, "feature_drifted", labels, start, float(figure < 0.05)))
    share = drifted / len(FEATURES)
    found.append((MODEL, VERSION, "drift_share", SOURCE, start, share))
    found.append((MODEL, VERSION, "dataset_drift", SOURCE, start, float(share >= 0.5)))
    return found


def _label_samples(window: int, start: datetime) -> list[Sample]:
    if window in UNLABELLED:
        return [(MODEL, VERSION, "label_coverage", SOURCE, start, 0.0)]
    coverage = 1.0 if window < LABELLED_UNTIL else 0.3 + 0.05 * (window - LABELLED_UNTIL)
    accuracy = 0.6 if window in AMOUNT_DRIFT else 0.95 - 0.01 * (window % 3)
    return [
        (MODEL, VERSION, "label_coverage", SOURCE, start, coverage),
        (MODEL, VERSION, "prediction_accuracy", SOURCE, start, accuracy),
    ]


def seed(url: str, now: datetime) -> InferenceScenario:
    """Store the scenario: its last window is the last closed one before `now`."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    last = epoch + ((now - epoch) // WINDOW - 2) * WINDOW
    starts = [last - (WINDOWS - 1 - i) * WINDOW for i in range(WINDOWS)]
    scenario = InferenceScenario(now, starts)
    for window, start in enumerate(starts):
        scenario.planted += _window_samples(window, start)
        scenario.planted += _label_samples(window, start)
    for minutes in range(5, 6 * 60, 5):
        moment = now - timedelta(minutes=minutes)
        scenario.planted.append(("Mistral", "v1", "prediction_accuracy", {}, moment, 0.88))
    add_samples(url, scenario.planted)
    with psycopg.connect(url) as conn:
        _alert(conn, starts[AMOUNT_DRIFT.start + 1])
    return scenario


def _alert(conn: psycopg.Connection[Any], fired_at: datetime) -> None:
    add_alert(
        conn,
        {
            "rule": "DatasetDrift",
            "state": "firing",
            "metric": "dataset_drift",
            "severity": "warning",
            "summary": "the inputs drifted from the reference",
            "value": 1.0,
            "active_at": fired_at - WINDOW,
            "fired_at": fired_at,
        },
        [("firing", "pending", "firing", fired_at)],
        model=MODEL,
        version=VERSION,
    )
