"""Alert rules: the YAML file, validated with pydantic, and what a rule says about one sample.

    rules:
      - name: LowPredictionAccuracy        # the alert's `alertname`; unique
        metric: prediction_accuracy
        op: "<"                            # <, <=, >, >=
        threshold: 0.3
        match: {model: "Mistral*", version: "*", labels: {env: prod}}   # optional
        window: 15m                        # optional: an aggregate over the store, else the sample
        aggregate: mean                    # mean, min, max, p50, p95, p99, count, last
        min_samples: 5                     # with a window: fewer samples -> not evaluated
        for: 10m                           # the condition holds this long before firing
        keep_firing_for: 5m                # stay firing this long after it stops holding
        repeat_interval: 4h                # notify again while firing
        severity: warning
        summary: "{metric} lower than {threshold}"   # fields: see SUMMARY_FIELDS

The file is read on first use in the worker (`current()`), never at import. A malformed file
raises ConfigError naming the rule and the field; `modelstats check-rules FILE` runs the same check.
"""

from __future__ import annotations

import logging
import os
import string
import threading
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from modelstats.core import durations
from modelstats.core.errors import BadInput, ConfigError
from modelstats.core.settings import get_settings

Op = Literal["<", "<=", ">", ">="]
Aggregate = Literal["mean", "min", "max", "p50", "p95", "p99", "count", "last"]

OP_WORDS: dict[str, str] = {
    "<": "lower than",
    "<=": "lower than or equal to",
    ">": "higher than",
    ">=": "higher than or equal to",
}
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
    "severity",
)
log = logging.getLogger("modelstats.rules")

DEFAULT_SUMMARY = "{metric} {op_words} {threshold}"
DEFAULT_WINDOW_SUMMARY = "{aggregate} of {metric} over {window} {op_words} {threshold}"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, 15m, 24h or 7d, got {value!r}")
    try:
        return durations.parse(value)
    except BadInput as error:
        raise ValueError(error.message) from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


def format_number(value: float) -> str:
    """0.3 -> '0.3', 100.0 -> '100': how a threshold or value reads in a message."""
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


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


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Name
    metric: Name
    op: Op
    threshold: float = Field(allow_inf_nan=False)
    match: Match = Field(default_factory=Match)
    window: Duration | None = None
    aggregate: Aggregate | None = None
    min_samples: int = Field(default=1, ge=1)
    for_: Duration = Field(default=timedelta(0), alias="for")
    keep_firing_for: Duration = timedelta(0)
    repeat_interval: Duration = timedelta(hours=4)
    severity: Name = "warning"
    summary: str | None = None

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold_is_a_number(cls, value: object) -> object:
        # YAML `threshold: "0.3"` or `true` is a mistake, not a number.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {type(value).__name__}")
        return value

    @field_validator("window")
    @classmethod
    def _window_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than 0s")
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

    @field_validator("repeat_interval")
    @classmethod
    def _repeat_positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

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

    @property
    def aggregation(self) -> str | None:
        """The aggregate applied over the window (mean when only a window is given)."""
        if self.window is None:
            return None
        return self.aggregate or "mean"

    def holds(self, value: float) -> bool:
        if self.op == "<":
            return value < self.threshold
        if self.op == "<=":
            return value <= self.threshold
        if self.op == ">":
            return value > self.threshold
        return value >= self.threshold

    def applies_to(self, model: str, version: str, metric: str, labels: dict[str, str]) -> bool:
        return metric == self.metric and self.match.matches(model, version, labels)

    def render_summary(
        self, model: str, version: str, labels: dict[str, str], value: float | None
    ) -> str:
        template = self.summary or (DEFAULT_WINDOW_SUMMARY if self.window else DEFAULT_SUMMARY)
        fields = {
            "rule": self.name,
            "metric": self.metric,
            "op": self.op,
            "op_words": OP_WORDS[self.op],
            "threshold": format_number(self.threshold),
            "value": format_number(value) if value is not None else "",
            "model": model,
            "version": version,
            "labels": labels,
            "aggregate": self.aggregation or "",
            "window": durations.format(self.window) if self.window else "",
            "severity": self.severity,
        }
        return template.format_map(fields)


def _example_fields() -> dict[str, Any]:
    return {name: "x" for name in SUMMARY_FIELDS} | {"labels": {}}


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule]


def _describe(raw: object, location: tuple[int | str, ...]) -> str:
    """`rule 'Name' (rules[2]), field 'window'` from a pydantic error location."""
    if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
        index = location[1]
        name = None
        if isinstance(raw, dict) and isinstance(raw.get("rules"), list):
            items = raw["rules"]
            if index < len(items) and isinstance(items[index], dict):
                name = items[index].get("name")
        rule = f"rule {name!r} (rules[{index}])" if name else f"rule rules[{index}]"
        field = ".".join(str(part) for part in location[2:])
        return f"{rule}, field {field!r}" if field else rule
    return "field " + repr(".".join(str(part) for part in location) or "rules")


def parse(text: str, origin: str = "rules") -> list[Rule]:
    """Validate a rules document; ConfigError lists every problem with its rule and field."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{origin}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping with a 'rules' list, e.g. 'rules: [...]'")
    try:
        document = RulesFile.model_validate(raw)
    except ValidationError as error:
        problems = [
            f"{_describe(raw, tuple(item['loc']))}: {item['msg'].removeprefix('Value error, ')}"
            for item in error.errors()
        ]
        raise ConfigError(f"{origin}: " + "; ".join(problems)) from None
    seen: dict[str, int] = {}
    for index, rule in enumerate(document.rules):
        if rule.name in seen:
            raise ConfigError(
                f"{origin}: rule {rule.name!r} (rules[{index}]), field 'name':"
                f" the same name as rules[{seen[rule.name]}]; names must be unique"
            )
        seen[rule.name] = index
    return document.rules


def load(path: str | os.PathLike[str]) -> list[Rule]:
    try:
        text = Path(path).read_text("utf-8")
    except OSError as error:
        raise ConfigError(f"alert rules file {os.fspath(path)!r}: {error.strerror}") from None
    return parse(text, origin=os.fspath(path))


class _Cache:
    """The rules of this process, reloaded when the file changes (a ConfigMap update).

    The first load must succeed: until then every request fails with the ConfigError (HTTP 500)
    and /healthz keeps the revision unready. A later edit of the same file that does not
    validate is logged and the last good rules stay in force.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int, int] | None = None
        self._good: tuple[str, list[Rule]] | None = None  # path, rules
        self._error: ConfigError | None = None

    def get(self) -> list[Rule]:
        path = get_settings().alert_rules_file
        try:
            stat = os.stat(path)
            key = (path, stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = (path, -1, -1)
        with self._lock:
            if key != self._key:
                self._key = key
                try:
                    self._good, self._error = (path, load(path)), None
                except ConfigError as error:
                    if self._good is not None and self._good[0] == path:
                        log.error("keeping the previous alert rules: %s", error)
                    else:
                        self._good, self._error = None, error
            if self._good is None:
                assert self._error is not None
                raise self._error
            return self._good[1]

    def clear(self) -> None:
        with self._lock:
            self._key = self._good = self._error = None


_cache = _Cache()


def current() -> list[Rule]:
    """The rules from ALERT_RULES_FILE (loaded on first use; ConfigError if malformed)."""
    return _cache.get()


def reset() -> None:
    """Forget the loaded rules (tests)."""
    _cache.clear()
