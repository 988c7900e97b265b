"""The drift methods: which figure each gives and when it says "drifted" by default.

The etl's inference job judges each column with one of them (etl/inference/drift.py); the
stats API hands the same table to whoever reads the figures (the dashboard colours a drift
strip with it), so a p-value and a distance read alike: how far past its threshold.

Tests give a p-value and drift when it is below the threshold; distances drift when they are
at least it. The thresholds are Evidently's defaults; a monitor may name another per feature.
"""

from __future__ import annotations

TESTS = ("ks", "chisquare", "z")
DISTANCES = ("wasserstein", "jensenshannon", "psi", "hellinger")
THRESHOLDS = dict.fromkeys(TESTS, 0.05) | dict.fromkeys(DISTANCES, 0.1)

P_VALUE, DISTANCE = "p-value", "distance"


def kind(method: str) -> str:
    """What a method's figure is: a p-value (small is drifted) or a distance (large is)."""
    return P_VALUE if method in TESTS else DISTANCE
