"""Alert rules: the YAML file, validated with pydantic, and what a rule says about a series.

    rules:
      - name: LowPredictionAccuracy        # the alert's `alertname`; unique
        metric: prediction_accuracy
        op: "<"                            # <, <=, >, >=
        threshold: 0.3
        match: {model: "Mistral*", version: "*", labels: {env: prod}}   # optional
        when: {label_coverage: ">= 0.5"}   # optional: other metrics of the same report
        window: 15m                        # optional: an aggregate over the store, else the sample
        aggregate: mean                    # mean, min, max, p50, p95, p99, count, last
        min_samples: 5                     # with a window: fewer samples -> not evaluated
        for: 10m                           # the condition holds this long before firing
        keep_firing_for: 5m                # stay firing this long after it stops holding
        stale_after: 15m                   # resolve once nothing was judged for this long
        repeat_interval: 4h                # notify again while firing
        severity: warning
        summary: "{metric} lower than {threshold}"   # fields: see SUMMARY_FIELDS

      - name: ModelSilent                  # an absence rule: it has `absent_for`
        absent_for: 15m                    # no sample for this long -> firing
        seen_within: 1d                    # ... from a model that reported within this
        per: model                         # model (any version and metric) or series
        metric: prediction_accuracy        # optional: only this metric's samples count
        match: {model: "*"}                # optional, as above

The file is read and checked by rulebook.py.
"""

from __future__ import annotations

import string
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from modelstats.alert.conditions import OP_WORDS, Condition, Op, compare, format_number
from modelstats.core import durations
from modelstats.core.errors import BadInput

Aggregate = Literal["mean", "min", "max", "p50", "p95", "p99", "count", "last"]

# The names a `summary` template may use, e.g. "{model} {version}: {metric} is {value}".
SUMMARY_FIELDS = (
    "rule",
    "metric",
    "op",
    "op_words",
    "threshold",
    "value",
    "model",
    "version",
    "labels",
    "aggregate",
    "window",
    "absent_for",
    "severity",
)

DEFAULT_SUMMARY = "{metric} {op_words} {threshold}"
DEFAULT_WINDOW_SUMMARY = "{aggregate} of {metric} over {window} {op_words} {threshold}"
DEFAULT_ABSENT_SUMMARY = "{model} has sent no sample for {absent_for}"
DEFAULT_ABSENT_SERIES_SUMMARY = "{metric} of {model} {version} has had no sample for {absent_for}"
# A rule on the sample (no window) counts its series stale after this long without a sample.
DEFAULT_STALE_AFTER = timedelta(minutes=15)
# What an absence rule per model writes where a series has a version or a metric.
ANY = "*"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, 15m, 24h or 7d, got {value!r}")
    try:
        parsed = durations.parse(value)
    except BadInput as error:
        raise ValueError(error.message) from None
    return parsed


def _positive(value: object) -> timedelta:
    parsed = _duration(value)
    if parsed <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return parsed


Duration = Annotated[timedelta, BeforeValidator(_duration)]
PositiveDuration = Annotated[timedelta, BeforeValidator(_positive)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
When = Annotated[Condition, BeforeValidator(Condition.parse)]


class Match(BaseModel):
    """Which series a rule applies to: model and version globs, label equalities."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Name = "*"
    version: Name = "*"
    labels: dict[Name, str] = Field(default_factory=dict)

    def matches(self, model: str, version: str, labels: dict[str, str]) -> bool:
        return (
            fnmatchcase(model, self.model)
            and fnmatchcase(version, self.version)
            and all(labels.get(key) == value for key, value in self.labels.items())
        )


class _Rule(BaseModel):
    """What every kind of rule has: a name, the series it applies to, how it notifies."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Name
    match: Match = Field(default_factory=Match)
    repeat_interval: PositiveDuration = timedelta(hours=4)
    severity: Name = "warning"
    summary: str | None = None

    @field_validator("summary")
    @classmethod
    def _summary_template(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            for _, field, _, _ in string.Formatter().parse(value):
                if field is not None and field not in SUMMARY_FIELDS:
                    known = ", ".join(SUMMARY_FIELDS)
                    raise ValueError(f"unknown field {{{field}}} (known: {known})")
            value.format_map(_example_fields())
        except (ValueError, IndexError, KeyError) as error:
            raise ValueError(f"not a valid template: {error}") from None
        return value


class Rule(_Rule):
    """A threshold on a metric: on each sample, or on an aggregate of a window of them."""

    metric: Name
    op: Op
    threshold: float = Field(allow_inf_nan=False)
    when: dict[Name, When] = Field(default_factory=dict)
    window: PositiveDuration | None = None
    aggregate: Aggregate | None = None
    min_samples: int = Field(default=1, ge=1)
    for_: Duration = Field(default=timedelta(0), alias="for")
    keep_firing_for: Duration = timedelta(0)
    stale_after_: PositiveDuration | None = Field(default=None, alias="stale_after")

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold_is_a_number(cls, value: object) -> object:
        # YAML `threshold: "0.3"` or `true` is a mistake, not a number.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {type(value).__name__}")
        return value

    @field_validator("when")
    @classmethod
    def _when_names_other_metrics(
        cls, value: dict[str, Condition], info: ValidationInfo
    ) -> dict[str, Condition]:
        if info.data.get("metric") in value:
            raise ValueError("conditions are on other metrics of the report, not the rule's own")
        return value

    @field_validator("aggregate")
    @classmethod
    def _aggregate_needs_window(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "window" in info.data and info.data["window"] is None:
            raise ValueError("an aggregate needs a window (e.g. window: 15m)")
        return value

    @field_validator("min_samples")
    @classmethod
    def _min_samples_needs_window(cls, value: int, info: ValidationInfo) -> int:
        if value > 1 and "window" in info.data and info.data["window"] is None:
            raise ValueError("min_samples above 1 needs a window (one sample is evaluated alone)")
        return value

    @property
    def aggregation(self) -> str | None:
        """The aggregate applied over the window (mean when only a window is given)."""
        if self.window is None:
            return None
        return self.aggregate or "mean"

    @property
    def stale_after(self) -> timedelta:
        """How long after the last sample it judged an open alert of this rule ends: its own
        setting, else the window (which then holds nothing new), else DEFAULT_STALE_AFTER."""
        return self.stale_after_ or self.window or DEFAULT_STALE_AFTER

    def holds(self, value: float) -> bool:
        return compare(value, self.op, self.threshold)

    def applies_to(self, model: str, version: str, metric: str, labels: dict[str, str]) -> bool:
        return metric == self.metric and self.match.matches(model, version, labels)

    def judges(self, metrics: dict[str, float]) -> bool:
        """Whether a report with these metrics is judged: it has the rule's metric, and every
        metric of `when` meets its condition."""
        return self.metric in metrics and all(
            name in metrics and condition.holds(metrics[name])
            for name, condition in self.when.items()
        )

    def render_summary(
        self, model: str, version: str, labels: dict[str, str], value: float | None
    ) -> str:
        template = self.summary or (DEFAULT_WINDOW_SUMMARY if self.window else DEFAULT_SUMMARY)
        return template.format_map(
            _fields(self, model, version, labels, value)
            | {
                "metric": self.metric,
                "aggregate": self.aggregation or "",
                "window": durations.format(self.window) if self.window else "",
            }
        )


class AbsenceRule(_Rule):
    """Fires when a model (or each of its series) has sent no sample for `absent_for`, as
    Prometheus' `absent_over_time`; judged on the alert function's schedule, not on arrival.

    Its value is the seconds since the newest sample, so it reads as a threshold rule would:
    `>= absent_for`. Only models seen within `seen_within` are watched: a model retired for
    longer is no longer an alert, and its open alert resolves."""

    absent_for: PositiveDuration
    seen_within: PositiveDuration = timedelta(days=1)
    per: Literal["model", "series"] = "model"
    metric: Name | None = None

    @field_validator("seen_within")
    @classmethod
    def _seen_longer_than_absent(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        absent_for = info.data.get("absent_for")
        if absent_for is not None and value <= absent_for:
            raise ValueError(
                f"must be longer than absent_for ({durations.format(absent_for)}):"
                " a model is watched from its last sample until seen_within has passed"
            )
        return value

    # What the state machine (state.step) and the notification read of a rule: the silence
    # compared with absent_for, judged as it is (no window, no `for`, no keep_firing_for).
    @property
    def op(self) -> Op:
        return ">="

    @property
    def threshold(self) -> float:
        return self.absent_for.total_seconds()

    @property
    def window(self) -> None:
        return None

    @property
    def aggregation(self) -> None:
        return None

    @property
    def for_(self) -> timedelta:
        return timedelta(0)

    @property
    def keep_firing_for(self) -> timedelta:
        return timedelta(0)

    def holds(self, value: float) -> bool:
        return value >= self.threshold

    def render_summary(
        self, model: str, version: str, labels: dict[str, str], value: float | None
    ) -> str:
        default = DEFAULT_ABSENT_SERIES_SUMMARY if self.per == "series" else DEFAULT_ABSENT_SUMMARY
        return (self.summary or default).format_map(
            _fields(self, model, version, labels, value)
            | {"metric": self.metric or ANY, "absent_for": durations.format(self.absent_for)}
        )


AnyRule = Rule | AbsenceRule


def _fields(
    rule: AnyRule, model: str, version: str, labels: dict[str, str], value: float | None
) -> dict[str, Any]:
    """The summary fields every kind of rule fills the same way."""
    return {name: "" for name in SUMMARY_FIELDS} | {
        "rule": rule.name,
        "op": rule.op,
        "op_words": OP_WORDS[rule.op],
        "threshold": format_number(rule.threshold),
        "value": format_number(value) if value is not None else "",
        "model": model,
        "version": version,
        "labels": labels,
        "severity": rule.severity,
    }


def _example_fields() -> dict[str, Any]:
    return {name: "x" for name in SUMMARY_FIELDS} | {"labels": {}}
