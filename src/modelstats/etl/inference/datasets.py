"""Reference datasets from files: CSV, JSON lines or Parquet, read into columns.

Columns are named as the figures name them (after the monitors file's renames; a column named
`prediction` is the prediction's reference). Values are read as JSON's types: numbers (and
booleans) make a numeric column, any text makes it a text column; empty CSV cells, nulls and
NaN are missing. CSV cells that parse as numbers are numbers. Parquet needs `pyarrow` (part of
the development install; `pip install pyarrow` elsewhere).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelstats.core.columns import Columns, add_column, check_name
from modelstats.core.errors import BadInput
from modelstats.etl.inference.frames import Column, column

FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
NAME_LIMIT = 200


@dataclass
class Dataset:
    rows: int
    columns: dict[str, Column]
    content: bytes  # the file's bytes, whose digest names the reference


def _number(cell: str) -> Any:
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


def _from_lists(table: dict[str, list[Any]], where: str) -> Dataset:
    rows = len(next(iter(table.values()), []))
    if not rows:
        raise BadInput(where, "holds no rows")
    columns = Columns(rows)
    for name, values in table.items():
        check_name(name, f"{where}: column {name!r}", NAME_LIMIT)
        if len(values) != rows:
            raise BadInput(where, f"column {name!r} has {len(values)} values for {rows} rows")
        add_column(columns, name, values, f"{where}: column {name!r}")
    arrays = {name: column(columns, name, rows) for name in columns.names()}
    return Dataset(rows, arrays, b"")


def _csv(content: bytes, where: str) -> dict[str, list[Any]]:
    try:
        reader = csv.reader(io.StringIO(content.decode("utf-8-sig")))
        header = next(reader)
    except UnicodeDecodeError:
        raise BadInput(where, "not UTF-8 text") from None
    except StopIteration:
        raise BadInput(where, "empty: a header line is needed") from None
    table: dict[str, list[Any]] = {name: [] for name in header}
    for number, line in enumerate(reader, start=2):
        if not line:
            continue
        if len(line) != len(header):
            raise BadInput(f"{where} line {number}", f"{len(line)} cells for {len(header)} columns")
        for name, cell in zip(header, line, strict=True):
            table[name].append(_number(cell))
    return table


def _jsonl(content: bytes, where: str) -> dict[str, list[Any]]:
    records = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError) as error:
            raise BadInput(f"{where} line {number}", f"not JSON: {error}") from None
        if not isinstance(record, dict):
            raise BadInput(f"{where} line {number}", "each line is one JSON object")
        records.append(record)
    names = list(dict.fromkeys(name for record in records for name in record))
    return {name: [record.get(name) for record in records] for name in names}


def _parquet(path: Path, where: str) -> dict[str, list[Any]]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise BadInput(where, "reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        return dict(parquet.read_table(path).to_pydict())
    except Exception as error:  # pyarrow's errors are many and not ours to list
        raise BadInput(where, f"not a readable Parquet file: {error}") from None


def _file(path: Path, kinds: tuple[str, ...]) -> tuple[str, bytes]:
    """The file's format (by its suffix, one of `kinds`) and its bytes."""
    kind = FORMATS.get(path.suffix.lower())
    if kind not in kinds:
        suffixes = sorted(suffix for suffix, found in FORMATS.items() if found in kinds)
        raise BadInput(str(path), f"unknown format; expected a file ending in one of {suffixes}")
    try:
        return kind, path.read_bytes()
    except OSError as error:
        raise BadInput(str(path), error.strerror or "cannot be read") from None


def read(path: Path) -> Dataset:
    """The dataset in `path`, by its suffix; BadInput naming the file (and line) if unusable."""
    where = str(path)
    kind, content = _file(path, ("csv", "jsonl", "parquet"))
    if kind == "csv":
        table = _csv(content, where)
    elif kind == "jsonl":
        table = _jsonl(content, where)
    else:
        table = _parquet(path, where)
    dataset = _from_lists(table, where)
    dataset.content = content
    return dataset


def kinds(dataset: Dataset) -> dict[str, str]:
    """Each column's kind, for the command's answer."""
    return {
        name: "text" if values.dtype == object else "numeric"
        for name, values in dataset.columns.items()
    }


@dataclass(frozen=True)
class LabelRow:
    id: str
    label: Any
    time: str | None


def read_labels(path: Path) -> list[LabelRow]:
    """The labels of a CSV (columns id, label, time optional) or JSON lines file. Ids stay
    text; a CSV label that parses as a number is one."""
    where = str(path)
    kind, content = _file(path, ("csv", "jsonl"))
    if kind == "jsonl":
        table = _jsonl(content, where)
    else:
        try:
            reader = csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
            table = {name: [] for name in reader.fieldnames or []}
            for line in reader:
                for name in table:
                    table[name].append(line.get(name))
        except UnicodeDecodeError:
            raise BadInput(where, "not UTF-8 text") from None
        if "label" in table:
            table["label"] = [_number(cell or "") for cell in table["label"]]
    for needed in ("id", "label"):
        if needed not in table:
            raise BadInput(where, f"no {needed!r} column (columns: id, label, time optional)")
    times = table.get("time") or [None] * len(table["id"])
    return [
        LabelRow(str(row_id), value, time or None)
        for row_id, value, time in zip(table["id"], table["label"], times, strict=True)
    ]
