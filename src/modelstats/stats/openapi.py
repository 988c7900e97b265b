"""The OpenAPI 3.1 document of the stats API, served at GET /openapi.json.

To document a new route, add one entry to PATHS (and its answers' schemas to answers.SCHEMAS);
the routing table is in functions/stats/main.py. tests/stats/test_openapi.py checks real
answers against it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from modelstats.core import durations
from modelstats.core.labels import DEFAULT_HORIZON, MAX_HORIZON, MIN_HORIZON
from modelstats.stats import inference_answers
from modelstats.stats.answers import SCHEMAS, ref
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


_ERRORS = {
    "400": _json(ref("Error"), "A malformed parameter; `field` names it."),
    "401": _json(ref("Error"), "STATS_API_TOKEN is set and the bearer token is missing or wrong."),
    "503": _json(ref("Error"), "The database is down or unreachable."),
}
_NOT_FOUND = {"404": _json(ref("Error"), "The model (or version) has no samples.")}

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
_LABELS_NOTE = (
    " Label filters: `label.<key>=<value>` (repeatable; every one must hold) keep only series"
    " whose labels include them."
)


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
                "404": _json(ref("Error"), "No such file."),
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
                    "content": {"application/json": {"schema": ref("VersionStats")}, **_CSV},
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
                    "content": {"application/json": {"schema": ref("ModelStats")}, **_CSV},
                },
                **_NOT_FOUND,
                **_ERRORS,
            },
        }
    },
    "/drift/{model}/{version}": {
        "get": {
            "summary": "Drift of a monitored model version, per window and per feature",
            "description": "What the etl's inference job wrote (samples labelled"
            " `source=inference`), laid out in cells of whole windows: per cell the windows'"
            " drift_share and dataset_drift, and those without a reference or with too few"
            " rows; per feature (most drifted first) and for the prediction, per cell the"
            " method, the windows judged and drifted, and the most drifted figure.",
            "parameters": [
                _param("model", "The model name.", {"type": "string"}, "path"),
                _param("version", "The version.", {"type": "string"}, "path"),
                *_WINDOW_PARAMS,
            ],
            "responses": {
                "200": _json(ref("Drift"), "The drift strip's data (empty without figures)."),
                **_NOT_FOUND,
                **_ERRORS,
            },
        }
    },
    "/accuracy/{model}/{version}": {
        "get": {
            "summary": "Accuracy (or regression errors) per window, with its label coverage",
            "description": "The inference job's figures from labels, in cells of whole"
            " windows; a window within the label horizon whose coverage is below 1 is"
            " provisional: its figure may still change as labels come.",
            "parameters": [
                _param("model", "The model name.", {"type": "string"}, "path"),
                _param("version", "The version.", {"type": "string"}, "path"),
                *_WINDOW_PARAMS,
                _param(
                    "horizon",
                    "How long the model's labels may take (its monitor's `horizon`), from"
                    f" {durations.format(MIN_HORIZON)} to {durations.format(MAX_HORIZON)};"
                    f" default {durations.format(DEFAULT_HORIZON)}.",
                    {"type": "string"},
                ),
            ],
            "responses": {
                "200": _json(ref("Accuracy"), "The windows' figures."),
                **_NOT_FOUND,
                **_ERRORS,
            },
        }
    },
    "/overview": {
        "get": {
            "summary": "Every model version: traffic, last drift, last accuracy, alerts firing",
            "description": "The versions with samples in the range, and those with an alert"
            " firing now.",
            "parameters": _WINDOW_PARAMS,
            "responses": {"200": _json(ref("Overview"), "The models."), **_ERRORS},
        }
    },
    "/models": {
        "get": {
            "summary": "Models, their versions, metrics, sample counts, first and last seen",
            "description": "Over all time unless since/until narrow the window (default"
            " until: now plus one day, as ingest accepts times up to a day ahead).",
            "parameters": _WINDOW_PARAMS,
            "responses": {"200": _json(ref("Models"), "The models."), **_ERRORS},
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
            "responses": {"200": _json(ref("DeadLetters"), "The dead letters."), **_ERRORS},
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
            "responses": {"200": _json(ref("Alerts"), "The alerts."), **_ERRORS},
        }
    },
    "/healthz": {
        "get": {
            "summary": "The database is reachable",
            "security": [],
            "responses": {
                "200": _json(ref("Health"), "Healthy."),
                "503": _ERRORS["503"],
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics: each recent series' last value, the requests served",
            "description": "The Prometheus text format (OpenMetrics when the Accept header"
            " asks for it): `modelstats_metric_last_value{model,version,metric}` and"
            " `modelstats_metric_last_sample_timestamp_seconds` for every series with a sample"
            " in the last 24 hours, at most METRICS_MAX_SERIES of them (the most recently"
            " updated; `modelstats_metric_last_value_series_omitted` counts the rest), then"
            " the request histogram and the process's own metrics.",
            "responses": {
                "200": {
                    "description": "The scrape.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": _ERRORS["401"],
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
            "schemas": {**SCHEMAS, **inference_answers.SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
