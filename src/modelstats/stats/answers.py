"""The JSON Schemas of the stats API's answers: `components.schemas` of its OpenAPI document."""

from __future__ import annotations

from typing import Any

from modelstats.store.alert_history import STATES as ALERT_STATES


def ref(name: str) -> dict[str, str]:
    """A reference to one of SCHEMAS."""
    return {"$ref": f"#/components/schemas/{name}"}


_NUMBER_OR_NULL = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_BUCKET_SECONDS = {
    "type": "integer",
    "minimum": 60,
    "description": "The width of the buckets of `series` (present with `bucket`).",
}
_LAST_SAMPLE = {
    "type": ["string", "null"],
    "format": "date-time",
    "description": "Present only when the window holds no samples: the time of the newest"
    " sample (of the metrics and labels asked for) at any time, null when there is none.",
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "field": {"type": "string"},
            "message": {"type": "string"},
        },
    },
    "Change": {
        "type": "object",
        "required": ["difference", "relative_change"],
        "properties": {"difference": _NUMBER_OR_NULL, "relative_change": _NUMBER_OR_NULL},
    },
    "MetricStats": {
        "type": "object",
        "description": "Aggregates of one metric in the window. stddev is the sample standard"
        " deviation (null for one sample); p50...p99 are continuous percentiles (as"
        " percentile_cont); first/last are the times of the first and last sample, last_value"
        " the value of the last one.",
        "required": [
            "count",
            "mean",
            "min",
            "max",
            "stddev",
            "p50",
            "p90",
            "p95",
            "p99",
            "first",
            "last",
            "last_value",
        ],
        "properties": {
            "count": {"type": "integer", "minimum": 1},
            "mean": {"type": "number"},
            "min": {"type": "number"},
            "max": {"type": "number"},
            "stddev": _NUMBER_OR_NULL,
            "p50": {"type": "number"},
            "p90": {"type": "number"},
            "p95": {"type": "number"},
            "p99": {"type": "number"},
            "first": _TIME,
            "last": _TIME,
            "last_value": {"type": "number"},
            "vs_baseline": {
                "type": "object",
                "description": "Difference (this - baseline) and relative change"
                " (difference / |baseline|, null when the baseline is 0), per number.",
                "additionalProperties": ref("Change"),
            },
        },
        "additionalProperties": False,
    },
    "Point": {
        "type": "object",
        "required": ["time", "count", "mean", "min", "max", "p95"],
        "properties": {
            "time": _TIME,
            "count": {"type": "integer", "minimum": 1},
            "mean": {"type": "number"},
            "min": {"type": "number"},
            "max": {"type": "number"},
            "p95": {"type": "number"},
        },
        "additionalProperties": False,
    },
    "Metrics": {"type": "object", "additionalProperties": ref("MetricStats")},
    "Series": {
        "type": "object",
        "description": "Per metric, the buckets that hold samples, in time order.",
        "additionalProperties": {"type": "array", "items": ref("Point")},
    },
    "Percentiles": {
        "type": "string",
        "enum": ["exact", "sketch"],
        "description": "exact: over raw samples. sketch: the window covers 3 or more whole UTC"
        " days that ended over an hour ago; those days come from daily rollups, whose"
        " percentiles are within 0.5% of the exact value (count, mean, min, max, stddev, first,"
        " last and last_value stay exact). Add exact=true for raw samples.",
    },
    "VersionStats": {
        "type": "object",
        "required": ["model", "version", "since", "until", "percentiles", "metrics"],
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "string"},
            "since": _TIME,
            "until": _TIME,
            "percentiles": ref("Percentiles"),
            "bucket_seconds": _BUCKET_SECONDS,
            "metrics": ref("Metrics"),
            "series": ref("Series"),
            "last_sample": _LAST_SAMPLE,
        },
        "additionalProperties": False,
    },
    "ModelStats": {
        "type": "object",
        "required": ["model", "since", "until", "percentiles", "versions"],
        "properties": {
            "model": {"type": "string"},
            "since": _TIME,
            "until": _TIME,
            "percentiles": ref("Percentiles"),
            "bucket_seconds": _BUCKET_SECONDS,
            "baseline": {"type": "string"},
            "versions": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["metrics"],
                    "properties": {
                        "metrics": ref("Metrics"),
                        "series": ref("Series"),
                        "last_sample": _LAST_SAMPLE,
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
    "Models": {
        "type": "object",
        "required": ["since", "until", "models"],
        "properties": {
            "since": {"type": ["string", "null"], "format": "date-time"},
            "until": _TIME,
            "models": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["model", "versions"],
                    "properties": {
                        "model": {"type": "string"},
                        "versions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": [
                                    "version",
                                    "metrics",
                                    "labels",
                                    "samples",
                                    "first_seen",
                                    "last_seen",
                                ],
                                "properties": {
                                    "version": {"type": "string"},
                                    "metrics": {"type": "array", "items": {"type": "string"}},
                                    "labels": {
                                        "type": "object",
                                        "description": "Each label key of the version's series"
                                        " and its values (for label.<key>=<value> filters).",
                                        "additionalProperties": {
                                            "type": "array",
                                            "items": {"type": "string"},
                                        },
                                    },
                                    "samples": {"type": "integer", "minimum": 1},
                                    "first_seen": _TIME,
                                    "last_seen": _TIME,
                                },
                                "additionalProperties": False,
                            },
                        },
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
    "DeadLetter": {
        "type": "object",
        "required": [
            "id",
            "received_at",
            "failed_at",
            "failures",
            "event",
            "error",
            "attributes",
            "data",
            "data_base64",
            "replayed_at",
        ],
        "properties": {
            "id": {"type": "integer"},
            "received_at": {**_TIME, "description": "The first failure."},
            "failed_at": {**_TIME, "description": "The latest failure."},
            "failures": {
                "type": "integer",
                "minimum": 1,
                "description": "How often the event reached the sink for this destination"
                " (one letter per event and destination: a replay that fails again reopens it).",
            },
            "event": {
                "type": "object",
                "required": ["source", "id", "type"],
                "properties": {
                    "source": {"type": "string"},
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
            "error": {
                "type": "object",
                "description": "Knative's knativeerrordest, knativeerrorcode, knativeerrordata.",
                "required": ["dest", "code", "data"],
                "properties": {
                    "dest": {"type": ["string", "null"]},
                    "code": {"type": ["integer", "null"]},
                    "data": {"type": ["string", "null"]},
                },
            },
            "attributes": {"type": "object"},
            "data": {
                "type": ["string", "null"],
                "description": "The event's data exactly as kept, as text (null when it is not"
                " UTF-8, or when the event had no data). Not parsed: it may be invalid JSON.",
            },
            "data_base64": {
                "type": ["string", "null"],
                "description": "The event's data in base64 when it is not UTF-8, else null.",
            },
            "replayed_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "DeadLetters": {
        "type": "object",
        "required": ["dead_letters"],
        "properties": {"dead_letters": {"type": "array", "items": ref("DeadLetter")}},
        "additionalProperties": False,
    },
    "Alert": {
        "type": "object",
        "description": "One alert: a rule on one series, from pending or firing until it ends.",
        "required": [
            "id",
            "rule",
            "fingerprint",
            "state",
            "model",
            "version",
            "metric",
            "labels",
            "annotations",
            "value",
            "active_at",
            "fired_at",
            "ended_at",
            "updated_at",
            "transitions",
        ],
        "properties": {
            "id": {"type": "integer"},
            "rule": {"type": "string"},
            "fingerprint": {"type": "string", "description": "Rule and series, 16 hex digits."},
            "state": {"enum": list(ALERT_STATES)},
            "model": {"type": "string"},
            "version": {"type": "string"},
            "metric": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "value": _NUMBER_OR_NULL,
            "active_at": _TIME,
            "fired_at": {"type": ["string", "null"], "format": "date-time"},
            "ended_at": {"type": ["string", "null"], "format": "date-time"},
            "updated_at": _TIME,
            "transitions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kind", "from", "to", "at", "value", "recorded_at"],
                    "properties": {
                        "kind": {"enum": ["pending", "firing", "repeat", "resolved", "inactive"]},
                        "from": {"type": "string"},
                        "to": {"type": "string"},
                        "at": _TIME,
                        "value": _NUMBER_OR_NULL,
                        "recorded_at": _TIME,
                    },
                },
            },
        },
    },
    "Alerts": {
        "type": "object",
        "required": ["alerts"],
        "properties": {"alerts": {"type": "array", "items": ref("Alert")}},
        "additionalProperties": False,
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
    },
}
