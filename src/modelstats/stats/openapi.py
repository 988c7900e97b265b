"""The OpenAPI 3.1 document of the stats API, served at GET /openapi.json.

To document a new route, add one entry to PATHS (and its schemas to SCHEMAS); the routing table
is in functions/stats/main.py. tests/stats/test_openapi.py checks real answers against it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from modelstats.stats.dashboard import UPLOT_VERSION
from modelstats.stats.params import (
    AUTO_POINTS,
    AUTO_WIDTHS,
    MAX_ALERTS,
    MAX_DEAD_LETTERS,
    MAX_POINTS,
    MAX_RANGE,
)
from modelstats.store.alert_history import STATES as ALERT_STATES


def _width(width: timedelta) -> str:
    minutes = int(width.total_seconds()) // 60
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, description: str, schema: dict[str, Any], where: str = "query") -> dict:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


_NUMBER_OR_NULL = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_ERRORS = {
    "400": _json(_ref("Error"), "A malformed parameter; `field` names it."),
    "401": _json(_ref("Error"), "STATS_API_TOKEN is set and the bearer token is missing or wrong."),
    "503": _json(_ref("Error"), "The database is down or unreachable."),
}
_NOT_FOUND = {"404": _json(_ref("Error"), "The model (or version) has no samples.")}

_WINDOW_PARAMS = [
    _param(
        "since",
        "Start of the window (inclusive): RFC 3339, `now`, or a duration back from now such as"
        " `15m`, `24h`, `7d`. Default: 24 hours before `until`. At most"
        f" {MAX_RANGE.days} days before `until`.",
        {"type": "string"},
    ),
    _param(
        "until",
        "End of the window (exclusive), written as `since`. Default: now.",
        {"type": "string"},
    ),
]
_STATS_PARAMS = [
    _param(
        "metric",
        "Only these metrics: repeat the parameter or separate names with commas.",
        {"type": "array", "items": {"type": "string"}},
    ),
    *_WINDOW_PARAMS,
    _param(
        "bucket",
        "Adds `series`: time buckets of this width (`1m` to `1d`, aligned on UTC midnight),"
        f" at most {MAX_POINTS} per metric; `auto` picks the finest of"
        f" {', '.join(_width(w) for w in AUTO_WIDTHS)} that gives at most {AUTO_POINTS}"
        " buckets (`bucket_seconds` in the answer says which).",
        {"type": "string"},
    ),
    _param(
        "format",
        "`csv` returns the series (needs `bucket`) as CSV.",
        {"type": "string", "enum": ["json", "csv"]},
    ),
    _param(
        "exact",
        "true: percentiles over raw samples even for long windows (see `percentiles`).",
        {"type": "boolean"},
    ),
]
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
_LABELS_NOTE = (
    " Label filters: `label.<key>=<value>` (repeatable; every one must hold) keep only series"
    " whose labels include them."
)

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
                "additionalProperties": _ref("Change"),
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
    "Metrics": {"type": "object", "additionalProperties": _ref("MetricStats")},
    "Series": {
        "type": "object",
        "description": "Per metric, the buckets that hold samples, in time order.",
        "additionalProperties": {"type": "array", "items": _ref("Point")},
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
            "percentiles": _ref("Percentiles"),
            "bucket_seconds": _BUCKET_SECONDS,
            "metrics": _ref("Metrics"),
            "series": _ref("Series"),
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
            "percentiles": _ref("Percentiles"),
            "bucket_seconds": _BUCKET_SECONDS,
            "baseline": {"type": "string"},
            "versions": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["metrics"],
                    "properties": {
                        "metrics": _ref("Metrics"),
                        "series": _ref("Series"),
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
        "properties": {"dead_letters": {"type": "array", "items": _ref("DeadLetter")}},
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
        "properties": {"alerts": {"type": "array", "items": _ref("Alert")}},
        "additionalProperties": False,
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
    },
}

_CSV = {
    "text/csv": {
        "schema": {
            "type": "string",
            "description": "Header model,version,metric,time,count,mean,min,max,p95 then one"
            " row per bucket.",
        }
    }
}

PATHS: dict[str, Any] = {
    "/": {
        "get": {
            "summary": "The dashboard: a static page that charts the JSON API in the browser",
            "security": [],
            "responses": {
                "200": {
                    "description": "The page (no data in it; it asks for the token on a 401).",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                },
                "304": {"description": "The browser's copy (If-None-Match) is current."},
            },
        }
    },
    "/dashboard/{asset}": {
        "get": {
            "summary": "The dashboard's scripts and styles, and the uPlot library it vendors",
            "description": "Our files are sent with `Cache-Control: no-cache` and an ETag (a"
            " revalidation is a 304); uPlot's carry its version in their name"
            f" (`uplot-{UPLOT_VERSION}.iife.min.js`, `uplot-{UPLOT_VERSION}.min.css`) and are"
            " cached for a year.",
            "security": [],
            "parameters": [
                _param(
                    "asset",
                    "The file name, as index.html refers to it.",
                    {"type": "string"},
                    "path",
                )
            ],
            "responses": {
                "200": {
                    "description": "The file.",
                    "content": {
                        "text/javascript": {"schema": {"type": "string"}},
                        "text/css": {"schema": {"type": "string"}},
                    },
                },
                "304": {"description": "The browser's copy (If-None-Match) is current."},
                "404": _json(_ref("Error"), "No such file."),
            },
        }
    },
    "/stats/{model}/{version}": {
        "get": {
            "summary": "Stats of one model version, per metric",
            "description": "Count, mean, min, max, stddev, percentiles, first and last per"
            " metric over the window; with `bucket`, a time series too." + _LABELS_NOTE,
            "parameters": [
                _param("model", "The model name.", {"type": "string"}, "path"),
                _param("version", "The version.", {"type": "string"}, "path"),
                *_STATS_PARAMS,
            ],
            "responses": {
                "200": {
                    "description": "The stats (CSV with format=csv).",
                    "content": {"application/json": {"schema": _ref("VersionStats")}, **_CSV},
                },
                **_NOT_FOUND,
                **_ERRORS,
            },
        }
    },
    "/stats/{model}": {
        "get": {
            "summary": "Every version of a model side by side",
            "description": "The stats of each version; with `baseline`, each metric gets its"
            " difference and relative change against that version." + _LABELS_NOTE,
            "parameters": [
                _param("model", "The model name.", {"type": "string"}, "path"),
                *_STATS_PARAMS,
                _param("baseline", "A version of this model to compare with.", {"type": "string"}),
            ],
            "responses": {
                "200": {
                    "description": "The stats per version (CSV with format=csv).",
                    "content": {"application/json": {"schema": _ref("ModelStats")}, **_CSV},
                },
                **_NOT_FOUND,
                **_ERRORS,
            },
        }
    },
    "/models": {
        "get": {
            "summary": "Models, their versions, metrics, sample counts, first and last seen",
            "description": "Over all time unless since/until narrow the window (default"
            " until: now plus one day, as ingest accepts times up to a day ahead).",
            "parameters": _WINDOW_PARAMS,
            "responses": {"200": _json(_ref("Models"), "The models."), **_ERRORS},
        }
    },
    "/dead-letters": {
        "get": {
            "summary": "Events whose delivery failed for good, newest first",
            "parameters": [
                _param(
                    "limit",
                    "How many (default 100).",
                    {"type": "integer", "minimum": 1, "maximum": MAX_DEAD_LETTERS},
                ),
                _param("pending", "true: only those not replayed yet.", {"type": "boolean"}),
                _param(
                    "since",
                    "Only those received since (RFC 3339 or a duration back from now).",
                    {"type": "string"},
                ),
            ],
            "responses": {"200": _json(_ref("DeadLetters"), "The dead letters."), **_ERRORS},
        }
    },
    "/alerts": {
        "get": {
            "summary": "Current and past alerts, newest first, each with its transitions",
            "parameters": [
                _param(
                    "state",
                    "Only these states (comma-separated): " + ", ".join(ALERT_STATES) + ".",
                    {"type": "string"},
                ),
                _param("model", "Only this model.", {"type": "string"}),
                _param("version", "Only this version.", {"type": "string"}),
                _param(
                    "since",
                    "Only alerts open at some time since then (RFC 3339, now, or a duration"
                    " back from now).",
                    {"type": "string"},
                ),
                _param(
                    "limit",
                    "How many (default 100).",
                    {"type": "integer", "minimum": 1, "maximum": MAX_ALERTS},
                ),
            ],
            "responses": {"200": _json(_ref("Alerts"), "The alerts."), **_ERRORS},
        }
    },
    "/healthz": {
        "get": {
            "summary": "The database is reachable",
            "security": [],
            "responses": {
                "200": _json(_ref("Health"), "Healthy."),
                "503": _ERRORS["503"],
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
        }
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelstats stats API",
            "version": "1.0.0",
            "description": "Stats of AI model metrics. When the function's STATS_API_TOKEN is"
            " set, every path but /healthz and the dashboard page / requires `Authorization: Bearer"
            " <token>`; when it is unset, the API is open to anyone who can reach it.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
