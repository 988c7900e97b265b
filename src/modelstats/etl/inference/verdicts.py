"""A window's drift against its reference: a verdict per feature and for the prediction, the
share of features that drifted, and whether the dataset did.

Per window and version (labels `source=inference`): `drift_share` (drifted features over the
features judged; the prediction is not a feature here), `dataset_drift` (1 when drift_share is
at least the monitor's `dataset_share`, 0.5 by default), `drift_rows_short` (1 when the window
has fewer than `min_rows` rows: no verdict then). Per column (labels `feature=<name>`,
`method=<name>`): `feature_drift`, the method's figure (a p-value for tests, a distance for
distances), and `feature_drifted` (0 or 1). The prediction's are those of `feature=prediction`:
the prediction drift. A window without a reference in force gives no drift figures.
"""

from __future__ import annotations

import math
from typing import Any

from modelstats.etl.inference import drift, sketches
from modelstats.etl.inference.drift import Verdict
from modelstats.etl.inference.frames import Column, Frame
from modelstats.etl.inference.monitors import Settings
from modelstats.etl.inference.profiles import PREDICTION_FEATURE, report
from modelstats.etl.inference.references import Reference, frame_columns
from modelstats.etl.inference.sketches import EXACT_ROWS, ColumnSketch


def verdict(
    name: str,
    values: Column,
    reference: Reference,
    settings: Settings,
    rows: int,
    made: ColumnSketch | None = None,
) -> Verdict | None:
    """The column's verdict: exact when both sides' rows are at hand and at most EXACT_ROWS,
    else from the sketches (`made`: the window's, from its profile, else made here)."""
    chosen = settings.drift.for_feature(name)
    exact = reference.values(name)
    if exact is not None and rows <= EXACT_ROWS:
        return drift.compare(exact, values, chosen.method, chosen.threshold)
    kept = reference.sketches.get(name)
    if kept is None:
        return None
    return sketches.compare(
        kept,
        made or ColumnSketch.of(values),
        reference.rows,
        chosen.method,
        chosen.threshold,
        few_values=reference.few_values(name),
    )


def judge(
    frame: Frame,
    reference: Reference | None,
    settings: Settings,
    labels: dict[str, str],
    made: dict[str, ColumnSketch] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The window-level drift figures (to add to the window's report) and one report per
    column judged; `made`: the window's sketches (its profile's), by column."""
    if reference is None:
        return {}, []
    if frame.rows < settings.min_rows:
        return {"drift_rows_short": 1.0}, []
    reports = []
    judged = drifted = 0
    for name, values in frame_columns(frame).items():
        found = verdict(name, values, reference, settings, frame.rows, (made or {}).get(name))
        if found is None or not math.isfinite(found.statistic):
            continue
        figures = {"feature_drift": found.statistic, "feature_drifted": float(found.drifted)}
        reports.append(report(frame, figures, {**labels, "feature": name, "method": found.method}))
        if name != PREDICTION_FEATURE:
            judged += 1
            drifted += found.drifted
    window: dict[str, float] = {"drift_rows_short": 0.0}
    if judged:
        share = drifted / judged
        window["drift_share"] = share
        window["dataset_drift"] = float(share >= settings.dataset_share)
    return window, reports
