"""The monitors file: how each model's logged traffic is windowed and judged.

    defaults:                    # every model, listed or not (each key optional)
      window: 5m
    monitors:
      - model: fraud-detector    # a name, or a glob such as "fraud-*"; the first match wins
        window: 5m               # window width, 1m to 1d, whole seconds, aligned on the epoch
        lateness: 2m             # a window is profiled once now is this far past its end
        task: auto               # classification, regression or auto (from the predictions)
        prediction: output-0     # the output that is the prediction (default: the first)
        features: {input-0_0: amount, input-0_1: age}   # logged name -> name in the figures
        reference: first         # drift reference: first, {from: <time>, to: <time>}
        reference_min_rows: 500  # `first`: the first window with at least this many rows
        min_rows: 100            # windows with fewer rows give no drift verdict
        drift:                   # method per feature; thresholds (see docs/inference.md)
          method: auto
          features: {amount: {method: ks, threshold: 0.01}}
        dataset_share: 0.5       # dataset drift when at least this share of features drift
        vs: {v2: v1}             # canary v2 is compared with v1's reference
        horizon: 7d              # labels may arrive this long after their prediction

Unlisted models are monitored with the defaults. The file (MONITORS_FILE; in Kubernetes the
ConfigMap `monitors`) is read on first use and again when it changes; a file that does not
validate is refused as a whole, the error naming the line and the field.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from modelstats.core import durations, timestamps
from modelstats.core.configfile import WatchedFile, line_of, read_text
from modelstats.core.errors import BadInput, ConfigError
from modelstats.core.labels import DEFAULT_HORIZON, MAX_HORIZON, MIN_HORIZON
from modelstats.core.settings import get_settings

WHAT = "monitors file"
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Task = Literal["classification", "regression", "auto"]
Method = Literal["auto", "ks", "wasserstein", "psi", "jensenshannon", "chisquare", "hellinger", "z"]


def _duration(least: timedelta, most: timedelta, whole: bool = False) -> BeforeValidator:
    def parse(value: object) -> timedelta:
        if isinstance(value, timedelta):
            parsed = value
        elif not isinstance(value, str):
            raise ValueError(f"expected a duration such as 5m, 2h or 1d, got {value!r}")
        else:
            try:
                parsed = durations.parse(value)
            except BadInput as error:
                raise ValueError(error.message) from None
        if not least <= parsed <= most:
            raise ValueError(
                f"must be between {durations.format(least)} and {durations.format(most)}"
            )
        if whole and parsed.microseconds:
            raise ValueError("must be a whole number of seconds")
        return parsed

    return BeforeValidator(parse)


def _moment(value: object) -> datetime:
    if isinstance(value, datetime):  # YAML reads an unquoted timestamp itself
        if value.tzinfo is None:
            raise ValueError("a time needs its offset, e.g. 2026-12-01T00:00:00Z")
        return value
    try:
        return timestamps.parse(value, "time")
    except BadInput as error:
        raise ValueError(error.message) from None


Window = Annotated[timedelta, _duration(timedelta(minutes=1), timedelta(days=1), whole=True)]
Lateness = Annotated[timedelta, _duration(timedelta(0), timedelta(days=1))]
Horizon = Annotated[timedelta, _duration(MIN_HORIZON, MAX_HORIZON)]
Moment = Annotated[datetime, BeforeValidator(_moment)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PinnedRange(_Strict):
    """A reference of logged traffic: the rows of [from, to)."""

    start: Moment = Field(alias="from")
    end: Moment = Field(alias="to")


def _reference(value: object) -> object:
    if value == "first" or isinstance(value, PinnedRange):
        return value
    if isinstance(value, dict):
        try:
            return PinnedRange.model_validate(value)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{where}: {message}") from None
    raise ValueError("must be `first` or a range {from: <time>, to: <time>}")


Reference = Annotated[Literal["first"] | PinnedRange, BeforeValidator(_reference)]


class FeatureDrift(_Strict):
    method: Method = "auto"
    threshold: float | None = Field(default=None, gt=0)


class Drift(_Strict):
    method: Method = "auto"
    threshold: float | None = Field(default=None, gt=0)
    features: dict[Name, FeatureDrift] = Field(default_factory=dict)

    def for_feature(self, name: str) -> FeatureDrift:
        return self.features.get(name) or FeatureDrift(method=self.method, threshold=self.threshold)


class Settings(_Strict):
    """What applies to one model (the defaults, overridden by its monitor)."""

    window: Window = timedelta(minutes=5)
    lateness: Lateness = timedelta(minutes=2)
    task: Task = "auto"
    prediction: Name | None = None
    features: dict[Name, Name] = Field(default_factory=dict)
    reference: Reference = "first"
    reference_min_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    min_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    drift: Drift = Field(default_factory=Drift)
    dataset_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    vs: dict[Name, Name] = Field(default_factory=dict)
    horizon: Horizon = DEFAULT_HORIZON

    def feature_name(self, logged: str) -> str:
        return self.features.get(logged, logged)


class Monitor(Settings):
    model: Name


class MonitorsFile(_Strict):
    defaults: dict[str, Any] = Field(default_factory=dict)
    monitors: list[dict[str, Any]] = Field(default_factory=list)


class Monitors:
    """The validated file: the settings of any model."""

    def __init__(self, defaults: Settings, monitors: list[Monitor]):
        self.defaults = defaults
        self.monitors = monitors

    def for_model(self, model: str) -> Settings:
        for monitor in self.monitors:
            if fnmatchcase(model, monitor.model):
                return monitor
        return self.defaults


def _problem(text: str, origin: str, where: list[str | int], error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    path = [*where, *first["loc"]]
    line = line_of(text, path)
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    at = f", line {line}" if line else ""
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{origin}{at}, field {field!r}: {message}"


def parse(text: str, origin: str = "monitors") -> Monitors:
    """Validate a monitors document; ConfigError names the line and field of the first problem."""
    try:
        raw = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{origin}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping with `defaults` and `monitors`")
    try:
        document = MonitorsFile.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_problem(text, origin, [], error)) from None
    try:
        defaults = Settings.model_validate(document.defaults)
    except ValidationError as error:
        raise ConfigError(_problem(text, origin, ["defaults"], error)) from None
    monitors = []
    for index, item in enumerate(document.monitors):
        try:
            monitors.append(Monitor.model_validate({**document.defaults, **item}))
        except ValidationError as error:
            raise ConfigError(_problem(text, origin, ["monitors", index], error)) from None
    return Monitors(defaults, monitors)


def load(path: str) -> Monitors:
    return parse(read_text(path, WHAT), origin=path)


_file: WatchedFile[Monitors] = WatchedFile(lambda: get_settings().monitors_file, load, WHAT)


def current() -> Monitors:
    """The monitors of MONITORS_FILE (loaded on first use, again when it changes)."""
    return _file.get()


def reset() -> None:
    """Forget the loaded file (tests)."""
    _file.clear()
