"""ETL jobs: the JSON a PingSource tick carries, validated (pydantic) into a typed job.

`{"source": "synthetic", "models": [...], "versions": [...], "seed": N}`,
`{"source": "jsonl", "path": ..., "window": "1m", "lateness": "1m", "reference": "first"}` or
`{"source": "inference"}` (its settings are per model, in the monitors file) or
`{"source": "demo", "part": "traffic" | "labels"}` (the demo's logged model); all take an
optional `name` (the event source becomes `/modelstats/etl/<name>`) and `labels`
(added to every report). Unknown keys are rejected. Errors name the field, e.g. `data.window`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError
from pydantic import field_validator as validates
from pydantic_core import ErrorDetails

from modelstats.core import contract, durations
from modelstats.core.cloudevents import Event
from modelstats.core.errors import BadInput
from modelstats.core.settings import get_settings
from modelstats.etl import confined

DEFAULT_MODELS = ("GPT", "Llama", "Mistral")

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _duration(value: Any, least: timedelta, most: timedelta) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        parsed = durations.parse(value)
    except BadInput as error:
        raise ValueError(error.message) from None
    if not least <= parsed <= most:
        raise ValueError(f"must be between {durations.format(least)} and {durations.format(most)}")
    return parsed


class _Job(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")] | None = None
    labels: Annotated[dict[Name, Name], Field(max_length=19)] = Field(default_factory=dict)


class SyntheticJob(_Job):
    """Random figures for demos and load (what the first version's ETL script sent)."""

    source: Literal["synthetic"]
    models: Annotated[list[Name], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_MODELS)
    )
    versions: Annotated[list[Name], Field(min_length=1)] = Field(default_factory=lambda: ["v1"])
    seed: StrictInt | None = None

    @validates("models", "versions")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("names must be distinct")
        return names

    @validates("versions")
    @classmethod
    def _fits_one_event(cls, versions: list[str], info: Any) -> list[str]:
        limit = get_settings().max_reports
        if len(info.data.get("models") or []) * len(versions) > limit:
            raise ValueError(f"models x versions must be at most {limit} reports")
        return versions


def _allowed(path: str, field: str) -> str:
    """The path normalised, if it is under ETL_ROOT; decided on the text, before anything is
    opened (anyone who can post a ping to the broker chooses it: see confined)."""
    try:
        return confined.check(path, field)
    except BadInput as error:
        raise ValueError(error.message) from None


class JsonlJob(_Job):
    """Inference logs, one JSON object a line, in a file or a directory of `*.jsonl` files."""

    source: Literal["jsonl"]
    path: Annotated[str, Field(min_length=1, max_length=1000)]
    window: timedelta = timedelta(minutes=1)
    lateness: timedelta = timedelta(minutes=1)
    # "first": the first window seen (per model and version); otherwise a JSONL file.
    reference: Annotated[str, Field(min_length=1, max_length=1000)] = "first"
    max_bytes: Annotated[StrictInt, Field(ge=1024, le=1 << 30)] = 16 << 20

    @validates("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        return _allowed(path, "data.path")

    @validates("reference")
    @classmethod
    def _reference(cls, reference: str) -> str:
        return reference if reference == "first" else _allowed(reference, "data.reference")

    @validates("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> timedelta:
        width = _duration(value, timedelta(seconds=1), timedelta(days=1))
        if width.microseconds:
            raise ValueError("must be a whole number of seconds")
        return width

    @validates("lateness", mode="before")
    @classmethod
    def _lateness(cls, value: Any) -> timedelta:
        return _duration(value, timedelta(0), timedelta(days=7))


class InferenceJob(_Job):
    """Profile the closed windows of every model's logged inference traffic (etl/inference/;
    each model's window, lateness and the rest come from the monitors file)."""

    source: Literal["inference"]


class DemoJob(_Job):
    """The demo's logged model (etl/demo.py): its traffic, or its labels a little later."""

    source: Literal["demo"]
    part: Literal["traffic", "labels"] = "traffic"
    model: Name = "demo-fraud"
    version: Name = "v1"
    # Calls a minute: 600 a 5-minute window, enough for a `first` reference (500 rows by
    # default), so that a first run shows drift; with 60 no window ever became the reference.
    rows: Annotated[StrictInt, Field(ge=1, le=1000)] = 120
    delay: timedelta = timedelta(minutes=3)

    @validates("delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> timedelta:
        return _duration(value, timedelta(0), timedelta(hours=1))


Job = SyntheticJob | JsonlJob | InferenceJob | DemoJob
_ADAPTER: TypeAdapter[Job] = TypeAdapter(
    Annotated[SyntheticJob | JsonlJob | InferenceJob | DemoJob, Field(discriminator="source")]
)
_SOURCES = ("synthetic", "jsonl", "inference", "demo")


def _field(error: ErrorDetails) -> str:
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return "data.source"
    loc = list(error["loc"])
    if loc and loc[0] in _SOURCES:
        loc = loc[1:]  # the tagged union puts the tag first
    text = "data"
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def parse(data: Any) -> Job:
    """Validate a job; BadInput names the first offending field."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            raise BadInput("data", "the job must be a JSON object") from None
    if not isinstance(data, dict):
        raise BadInput("data", 'the job must be a JSON object such as {"source": "synthetic"}')
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        message = first["msg"]
        if first["type"] == "union_tag_invalid":
            message = f"unknown source {data.get('source')!r}; expected one of {list(_SOURCES)}"
        elif first["type"] == "union_tag_not_found":
            message = f"missing; expected one of {list(_SOURCES)}"
        elif first["type"] == "value_error":
            message = str(first["ctx"]["error"])
        raise BadInput(_field(first), message) from None


def from_ping(event: Event) -> Job:
    """The job a PingSource tick carries in its data."""
    if event.type != contract.PING:
        raise BadInput("type", f"expected {contract.PING!r}, got {event.type!r}")
    if event.data is None:
        raise BadInput("data", "the ping carries no job")
    return parse(event.data)
