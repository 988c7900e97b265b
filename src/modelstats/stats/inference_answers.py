"""The JSON Schemas of the answers about monitored inference (/drift, /accuracy, /overview):
`components.schemas` of the OpenAPI document, beside answers.SCHEMAS."""

from __future__ import annotations

from typing import Any

from modelstats.core import drift_methods
from modelstats.stats.answers import ref

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_COUNT = {"type": "integer", "minimum": 0}
_RANGE = {
    "model": {"type": "string"},
    "version": {"type": "string"},
    "since": _TIME,
    "until": _TIME,
    "window_seconds": {
        "type": ["number", "null"],
        "description": "The width of the version's windows: the smallest gap between two of"
        " them in the range (null for fewer than two).",
    },
    "cell_seconds": {
        "type": "number",
        "description": "The width of a cell: one window, or as many whole windows as keep the"
        " range to 300 cells.",
    },
}
_CELL_TIME = {
    **_TIME,
    "description": "The cell's start (its first window's, aligned on the epoch).",
}

SCHEMAS: dict[str, Any] = {
    "DriftCell": {
        "type": "object",
        "description": "The windows of one cell, from their window-level samples.",
        "required": [
            "time",
            "windows",
            "rows",
            "no_reference",
            "rows_short",
            "judged",
            "drift_share",
            "drift_share_max",
            "dataset_drift",
        ],
        "properties": {
            "time": _CELL_TIME,
            "windows": _COUNT,
            "rows": {**_NUMBER_OR_NULL, "description": "Rows profiled in its windows."},
            "no_reference": {**_COUNT, "description": "Windows with no reference in force yet."},
            "rows_short": {**_COUNT, "description": "Windows with fewer rows than min_rows."},
            "judged": {**_COUNT, "description": "Windows with a drift_share."},
            "drift_share": {**_NUMBER_OR_NULL, "description": "The mean over judged windows."},
            "drift_share_max": _NUMBER_OR_NULL,
            "dataset_drift": {**_COUNT, "description": "Windows whose dataset drifted."},
        },
        "additionalProperties": False,
    },
    "ColumnDrift": {
        "type": "object",
        "description": "One feature (or the prediction) over the range; `cells` holds arrays"
        " aligned with the answer's `cells` (entry i is cell i).",
        "required": ["feature", "methods", "judged", "drifted", "cells"],
        "properties": {
            "feature": {"type": "string"},
            "methods": {"type": "array", "items": {"type": "string"}},
            "judged": {**_COUNT, "description": "Windows judged in the range."},
            "drifted": {**_COUNT, "description": "Windows that drifted."},
            "cells": {
                "type": "object",
                "required": ["method", "judged", "drifted", "figure"],
                "properties": {
                    "method": {
                        "type": "array",
                        "items": {"type": ["string", "null"]},
                        "description": "The method, null where the column was not judged.",
                    },
                    "judged": {"type": "array", "items": _COUNT},
                    "drifted": {"type": "array", "items": _COUNT},
                    "figure": {
                        "type": "array",
                        "items": _NUMBER_OR_NULL,
                        "description": "The most drifted of the cell's figures: the least"
                        " p-value of a test, the greatest distance.",
                    },
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    "Drift": {
        "type": "object",
        "required": [*_RANGE, "methods", "cells", "features", "prediction"],
        "properties": {
            **_RANGE,
            "methods": {
                "type": "object",
                "description": "What each method's figure is and its default threshold.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["kind", "threshold"],
                    "properties": {
                        "kind": {"enum": [drift_methods.P_VALUE, drift_methods.DISTANCE]},
                        "threshold": {"type": "number"},
                    },
                },
            },
            "cells": {"type": "array", "items": ref("DriftCell")},
            "features": {
                "type": "array",
                "description": "Most drifted first: by drifted windows, then their share.",
                "items": ref("ColumnDrift"),
            },
            "prediction": {"oneOf": [ref("ColumnDrift"), {"type": "null"}]},
        },
        "additionalProperties": False,
    },
    "Accuracy": {
        "type": "object",
        "required": [*_RANGE, "horizon_seconds", "task", "metrics", "cells"],
        "properties": {
            **_RANGE,
            "horizon_seconds": {"type": "number"},
            "task": {"enum": ["classification", "regression", None]},
            "metrics": {
                "type": "array",
                "items": {"enum": ["prediction_accuracy", "mae", "rmse", "mape"]},
            },
            "cells": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "time",
                        "windows",
                        "label_coverage",
                        "label_coverage_min",
                        "provisional",
                        "values",
                    ],
                    "properties": {
                        "time": _CELL_TIME,
                        "windows": _COUNT,
                        "label_coverage": _NUMBER_OR_NULL,
                        "label_coverage_min": _NUMBER_OR_NULL,
                        "provisional": {
                            **_COUNT,
                            "description": "Windows within the horizon whose coverage is"
                            " below 1: their figures may still change.",
                        },
                        "values": {
                            "type": "object",
                            "description": "The mean of each metric over the cell's windows.",
                            "additionalProperties": {"type": "number"},
                        },
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
    "OverviewVersion": {
        "type": "object",
        "required": [
            "version",
            "inference",
            "metrics",
            "samples",
            "first_seen",
            "last_seen",
            "requests",
            "rows",
            "drift",
            "accuracy",
            "firing",
        ],
        "properties": {
            "version": {"type": "string"},
            "inference": {"type": "boolean", "description": "Has source=inference samples."},
            "metrics": {"type": "array", "items": {"type": "string"}},
            "samples": _COUNT,
            "first_seen": _TIME_OR_NULL,
            "last_seen": _TIME_OR_NULL,
            "requests": _NUMBER_OR_NULL,
            "rows": _NUMBER_OR_NULL,
            "drift": {
                "type": ["object", "null"],
                "required": ["time", "drift_share", "dataset_drift"],
                "properties": {
                    "time": _TIME,
                    "drift_share": {"type": "number"},
                    "dataset_drift": _NUMBER_OR_NULL,
                },
            },
            "accuracy": {
                "type": ["object", "null"],
                "required": ["time", "metric", "value", "label_coverage", "inference"],
                "properties": {
                    "time": _TIME,
                    "metric": {"type": "string"},
                    "value": {"type": "number"},
                    "label_coverage": _NUMBER_OR_NULL,
                    "inference": {"type": "boolean"},
                },
            },
            "firing": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["rule", "metric", "severity", "summary", "fired_at"],
                    "properties": {
                        "rule": {"type": "string"},
                        "metric": {"type": "string"},
                        "severity": {"type": ["string", "null"]},
                        "summary": {"type": ["string", "null"]},
                        "fired_at": _TIME_OR_NULL,
                    },
                },
            },
        },
        "additionalProperties": False,
    },
    "Overview": {
        "type": "object",
        "required": ["since", "until", "models"],
        "properties": {
            "since": _TIME,
            "until": _TIME,
            "models": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["model", "versions"],
                    "properties": {
                        "model": {"type": "string"},
                        "versions": {"type": "array", "items": ref("OverviewVersion")},
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
}
