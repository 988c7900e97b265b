"""Drift references: what each model version's windows are compared with, and where it is kept.

Which reference is in force for a version (`vs: {canary: stable}` in the monitors file makes
the canary use the stable version's):
1. a dataset uploaded with `modelstats reference set` (training data, usually): it wins over
   the monitors file until `modelstats reference clear` removes it;
2. else the monitors file's `reference`:
   - `first` (the default): the first window of the version with at least
     `reference_min_rows` rows becomes its reference (that window is compared with itself);
     a new version without a reference of its own is compared with its own first window;
   - `{from, to}`: the logged traffic of that range, cut once the range is profiled: from the
     kept rows when they are still there, else merged from the windows' sketches (the rows
     of profiled days are dropped after two days).
A reference changed in the monitors file replaces the kept one at the next window. References
live in their own tables (inference_references): retention never drops them.

Kept: the rows themselves when there are at most EXACT_ROWS (drift is then computed on them,
exactly), and a sketch of every column always (drift of larger sides comes from those).
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import datasketches
import numpy as np
import psycopg
from psycopg.rows import dict_row

from modelstats.core import timestamps
from modelstats.core.columns import Columns
from modelstats.etl.inference import frames as frames_module
from modelstats.etl.inference.datasets import Dataset
from modelstats.etl.inference.frames import Column, Frame, column
from modelstats.etl.inference.monitors import Monitors, PinnedRange, Settings
from modelstats.etl.inference.profiles import PREDICTION_FEATURE
from modelstats.etl.inference.sketches import EXACT_ROWS, ColumnSketch
from modelstats.store import queries

log = logging.getLogger("modelstats.etl.inference")

UPLOAD, RANGE, FIRST = "upload:", "range:", "first:"

Connection = psycopg.Connection[Any]


@dataclass
class Reference:
    model: str
    version: str
    origin: str
    rows: int
    columns: Columns | None  # the rows, when at most EXACT_ROWS
    sketches: dict[str, ColumnSketch] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def exact(self) -> bool:
        return self.columns is not None

    def values(self, name: str) -> Column | None:
        if self.columns is None or name not in self.columns.names():
            return None
        return column(self.columns, name, self.columns.rows)

    def few_values(self, name: str) -> bool:
        """Whether the reference's numbers of `name` take five distinct values or fewer."""
        values = self.values(name)
        if values is not None:
            present = values[~np.isnan(values)] if values.dtype != object else values
            return len(np.unique(present)) <= 5
        sketch = self.sketches.get(name)
        if sketch is None or sketch.kind != "numeric" or sketch.count < 1:
            return False
        quantiles = sketch.kll().get_quantiles(((np.arange(200) + 0.5) / 200).tolist())
        return len(set(quantiles)) <= 5


def _q(name: str) -> Any:
    return queries.get("inference", name)


def load(conn: Connection, model: str, version: str) -> Reference | None:
    with conn.cursor(row_factory=dict_row, binary=True) as cursor:
        row = cursor.execute(_q("reference"), (model, version)).fetchone()
        if row is None:
            return None
        sketches = {
            found["feature"]: ColumnSketch(
                found["kind"],
                found["count"],
                bytes(found["sketch"]),
                found["total"],
                found["squares"],
            )
            for found in cursor.execute(_q("reference_sketches"), (model, version)).fetchall()
        }
    columns = Columns.decode(bytes(row["columns"])) if row["columns"] is not None else None
    return Reference(
        model, version, row["origin"], row["rows"], columns, sketches, row["created_at"]
    )


def _stored_columns(values: dict[str, Column], rows: int) -> Columns:
    columns = Columns(rows)
    for name, data in values.items():
        if data.dtype == object:
            columns.text[name] = list(data)
        else:
            numbers = array("d")
            numbers.frombytes(np.ascontiguousarray(data, dtype=np.float64).tobytes())
            columns.numeric[name] = numbers
    return columns


def save(
    conn: Connection,
    model: str,
    version: str,
    origin: str,
    values: dict[str, Column],
    rows: int,
    sketches: dict[str, ColumnSketch] | None = None,
) -> Reference:
    """Keep `values` (column name -> array of `rows`) as the version's reference, in place of
    any other; with `sketches` given and no values, a sketch-only reference."""
    made = (
        sketches
        if sketches is not None
        else {name: ColumnSketch.of(data) for name, data in values.items()}
    )
    columns = _stored_columns(values, rows) if values and rows <= EXACT_ROWS else None
    conn.execute(_q("delete_reference"), (model, version))
    conn.execute(
        _q("insert_reference"),
        (model, version, origin, rows, columns.encode() if columns is not None else None),
    )
    with conn.cursor() as cursor:
        cursor.executemany(
            _q("insert_reference_sketch"),
            [
                {
                    "model": model,
                    "version": version,
                    "feature": name,
                    "kind": sketch.kind,
                    "count": sketch.count,
                    "sketch": sketch.sketch,
                    "total": sketch.total,
                    "squares": sketch.squares,
                }
                for name, sketch in made.items()
            ],
        )
    log.info("%s %s: reference %s (%d rows)", model, version, origin, rows)
    return Reference(model, version, origin, rows, columns, made)


def frame_columns(frame: Frame) -> dict[str, Column]:
    values = dict(frame.features)
    if frame.prediction is not None:
        values[PREDICTION_FEATURE] = frame.prediction
    return values


def range_origin(pinned: PinnedRange) -> str:
    return f"{RANGE}{timestamps.format(pinned.start)}/{timestamps.format(pinned.end)}"


def upload_origin(name: str, content: bytes) -> str:
    return f"{UPLOAD}{name}#{hashlib.sha256(content).hexdigest()[:12]}"


def _merged_sketches(
    conn: Connection, model: str, version: str, pinned: PinnedRange
) -> tuple[dict[str, ColumnSketch], int]:
    """The range's window sketches merged per column, and how many rows the range held."""
    with conn.cursor(row_factory=dict_row, binary=True) as cursor:
        found = cursor.execute(
            _q("window_sketches"), (model, version, pinned.start, pinned.end)
        ).fetchall()
    merged: dict[str, list[Any]] = {}
    rows: dict[str, int] = {}
    for row in found:
        blob, name = bytes(row["sketch"]), row["feature"]
        if row["kind"] == "numeric":
            sketch: Any = datasketches.kll_doubles_sketch.deserialize(blob)
        else:
            sketch = datasketches.frequent_strings_sketch.deserialize(blob)
        present = row["rows"] - row["missing"]
        rows[name] = rows.get(name, 0) + row["rows"]
        if name not in merged:
            merged[name] = [row["kind"], sketch, row["total"], row["squares"], present]
            continue
        known = merged[name]
        known[1].merge(sketch)
        known[2] += row["total"]
        known[3] += row["squares"]
        known[4] += present
    sketches = {
        name: ColumnSketch(kind, count, sketch.serialize(), total, squares)
        for name, (kind, sketch, total, squares, count) in merged.items()
    }
    return sketches, max(rows.values(), default=0)


class InForce:
    """The references of one run, looked up once per model version."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._known: dict[tuple[str, str], Reference | None] = {}

    def get(self, frame: Frame, settings: Settings) -> Reference | None:
        target = settings.vs.get(frame.version, frame.version)
        key = (frame.model, target)
        if key not in self._known:
            self._known[key] = load(self.conn, *key)
        stored = self._known[key]
        if stored is not None and stored.origin.startswith(UPLOAD):
            return stored
        if isinstance(settings.reference, PinnedRange):
            wanted = range_origin(settings.reference)
            if stored is not None and stored.origin == wanted:
                return stored
            if frame.start < settings.reference.end:
                return None  # the range is not profiled yet
            self._known[key] = self._cut_range(frame.model, target, settings)
            return self._known[key]
        if stored is not None and stored.origin.startswith(FIRST):
            return stored
        if target != frame.version or frame.rows < settings.reference_min_rows:
            return None
        origin = f"{FIRST}{timestamps.format(frame.start)}"
        made = save(self.conn, frame.model, target, origin, frame_columns(frame), frame.rows)
        self._known[key] = made
        return made

    def _cut_range(self, model: str, version: str, settings: Settings) -> Reference | None:
        pinned = settings.reference
        assert isinstance(pinned, PinnedRange)
        origin = range_origin(pinned)
        found = [
            frame
            for frame in frames_module.read_windows(
                self.conn, model, settings, pinned.start, pinned.end
            )
            if frame.version == version and frame.rows
        ]
        rows = sum(frame.rows for frame in found)
        if rows:
            values: dict[str, Column] = {}
            for name in frame_columns(found[0]):
                parts = [frame_columns(frame).get(name) for frame in found]
                if all(part is not None for part in parts):
                    values[name] = np.concatenate(parts)  # type: ignore[arg-type]
            return save(self.conn, model, version, origin, values, rows)
        sketches, count = _merged_sketches(self.conn, model, version, pinned)
        if not sketches:
            log.warning("%s %s: no rows or sketches in the pinned range %s", model, version, origin)
            return None
        return save(self.conn, model, version, origin, {}, count, sketches)


# --- the `modelstats reference` commands -----------------------------------------------------


@dataclass(frozen=True)
class Listed:
    model: str
    version: str
    origin: str  # what the stored reference is, or what the monitors file asks for
    rows: int | None  # None: nothing stored yet
    exact: bool
    created_at: datetime | None


def upload(conn: Connection, model: str, version: str, name: str, dataset: Dataset) -> Reference:
    """Keep an uploaded dataset as the version's reference (it wins over the monitors file)."""
    origin = upload_origin(name, dataset.content)
    return save(conn, model, version, origin, dataset.columns, dataset.rows)


def clear(conn: Connection, model: str, version: str) -> bool:
    """Forget the version's reference; the monitors file's setting takes over again."""
    return conn.execute(_q("delete_reference"), (model, version)).rowcount > 0


def listing(conn: Connection, monitors: Monitors, model: str | None = None) -> list[Listed]:
    """Every stored reference, and every profiled version without one (with what it waits
    for), of `model` or of all models."""
    with conn.cursor(row_factory=dict_row) as cursor:
        stored = cursor.execute(_q("references"), {"model": model}).fetchall()
        profiled = cursor.execute(_q("profiled_versions"), {"model": model}).fetchall()
    listed = [
        Listed(r["model"], r["version"], r["origin"], r["rows"], r["exact"], r["created_at"])
        for r in stored
    ]
    have = {(r["model"], r["version"]) for r in stored}
    for row in profiled:
        key = (row["model"], row["version"])
        if key in have:
            continue
        settings = monitors.for_model(row["model"])
        target = settings.vs.get(row["version"])
        if target is not None:
            wanted = f"vs {target} (that version's reference)"
        elif isinstance(settings.reference, PinnedRange):
            wanted = f"{range_origin(settings.reference)} (cut once the range is profiled)"
        else:
            wanted = f"first (the first window of {settings.reference_min_rows}+ rows)"
        listed.append(Listed(row["model"], row["version"], wanted, None, False, None))
    return sorted(listed, key=lambda item: (item.model, item.version))
