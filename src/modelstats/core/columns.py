"""Columns: rows of logged inference data, kept column by column, and their one byte codec.

Ingest turns every logged event (a KServe or Seldon request or response, a batch of records)
into Columns and stores them as bytes; the etl's inference job reads them back to profile
windows. Column storage is what makes that job fast: a window of 200,000 rows is a few
hundred blobs whose numbers are read without a per-value Python step.

- `numeric`: float64 columns; NaN marks a missing value (absent, null or NaN in the input).
- `text`: string columns; None marks a missing value.

The bytes: `MSC1`, a 4-byte little-endian length, a compact JSON header
`{"rows": n, "numeric": [names], "text": {name: [values]}}`, then the numeric columns in the
header's order, n float64 each, little-endian.
"""

from __future__ import annotations

import json
import math
import re
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import orjson

from modelstats.core import surrogates
from modelstats.core.errors import BadInput

MAGIC = b"MSC1"
_LENGTH = struct.Struct("<I")
NAN = float("nan")

# array('d') and memoryview.cast('d') use the machine's byte order; every platform this runs
# on is little-endian, and the stored bytes are meant to be read on another machine too.
if sys.byteorder != "little":  # pragma: no cover
    raise ImportError("modelstats stores float64 columns little-endian: a big-endian host")

# array('d') as built, or a memoryview cast to 'd' as decoded: both are buffers numpy reads.
Numbers: TypeAlias = "array[float] | memoryview[float]"
Texts = list[str | None]


@dataclass
class Columns:
    rows: int
    numeric: dict[str, Numbers] = field(default_factory=dict)
    text: dict[str, Texts] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [*self.numeric, *self.text]

    def __len__(self) -> int:
        return len(self.numeric) + len(self.text)

    def encode(self) -> bytes:
        header = json.dumps(
            {"rows": self.rows, "numeric": list(self.numeric), "text": self.text},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        block = array("d")
        for name, values in self.numeric.items():
            if len(values) != self.rows:
                raise ValueError(f"column {name!r} has {len(values)} values, not {self.rows}")
            block.extend(values)
        return MAGIC + _LENGTH.pack(len(header)) + header + block.tobytes()

    @classmethod
    def decode(cls, data: bytes | memoryview) -> Columns:
        """The columns of `encode`'s bytes; numbers as zero-copy float64 memoryviews."""
        view = memoryview(data)
        if bytes(view[:4]) != MAGIC:
            raise ValueError("not a Columns blob")
        (length,) = _LENGTH.unpack_from(view, 4)
        # orjson: the window job decodes tens of thousands of headers a tick, their row ids
        # in them, in half the time of json's. The header is json.dumps' (valid UTF-8 JSON).
        header = orjson.loads(view[8 : 8 + length])
        rows = header["rows"]
        numbers = view[8 + length :].cast("d")  # once: slices of a cast view stay float64
        numeric: dict[str, Numbers] = {}
        for i, name in enumerate(header["numeric"]):
            numeric[name] = numbers[i * rows : (i + 1) * rows]
        return cls(rows, numeric, header["text"])

    def take(self, rows: Sequence[int]) -> Columns:
        """Only the rows at these positions, in this order."""
        numeric = {
            name: array("d", (values[i] for i in rows)) for name, values in self.numeric.items()
        }
        text = {name: [values[i] for i in rows] for name, values in self.text.items()}
        return Columns(len(rows), dict(numeric), text)

    @classmethod
    def concat(cls, parts: Sequence[Columns]) -> Columns:
        """The rows of every part, in order. A column missing from a part is missing there; a
        column that is text in any part is text in all (numbers written as JSON writes them)."""
        if len(parts) == 1:
            return parts[0]
        merged = cls(sum(part.rows for part in parts))
        text = _ordered(name for part in parts for name in part.text)
        numeric = [n for n in _ordered(n for part in parts for n in part.numeric) if n not in text]
        for name in numeric:
            # One join of the parts' buffers: a window is thousands of small blocks.
            buffers = [part.numeric.get(name) or _missing(part.rows) for part in parts]
            column = array("d")
            column.frombytes(b"".join(buffers))
            merged.numeric[name] = column
        for name in text:
            texts: Texts = []
            for part in parts:
                if name in part.text:
                    texts.extend(part.text[name])
                elif name in part.numeric:
                    texts.extend(number_text(value) for value in part.numeric[name])
                else:
                    texts.extend([None] * part.rows)
            merged.text[name] = texts
        return merged


def _missing(rows: int) -> array[float]:
    return array("d", [NAN]) * rows


def number_text(value: float) -> str | None:
    """A number as text, the way JSON writes it (3, not 3.0); NaN (missing) as None."""
    if value != value:
        return None
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _ordered(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def check_rows(columns: Columns, field: str) -> None:
    """Every column holds `rows` values (a parser's last check before storing)."""
    for name, values in [*columns.numeric.items(), *columns.text.items()]:
        if len(values) != columns.rows:
            raise BadInput(field, f"{name!r} has {len(values)} values for {columns.rows} rows")


# --- building columns from JSON values (the parsers of ingest and the reporter) -------------

_NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")


def check_name(name: object, field: str, limit: int) -> str:
    """A column name: it becomes a label value (`feature=<name>`), so the label rules apply."""
    if not isinstance(name, str) or not name.strip():
        raise BadInput(field, "a column name must be a non-empty string")
    if len(name) > limit:
        raise BadInput(field, f"column name longer than {limit} characters")
    if not _NAME.fullmatch(name):
        raise BadInput(field, "column name contains control characters")
    check_text(name, field)
    return name


def check_text(value: str, field: str) -> str:
    """A string PostgreSQL and JSON can hold: no lone surrogate (core/surrogates.py), no NUL."""
    if surrogates.has(value):
        raise BadInput(field, surrogates.MESSAGE)
    if "\x00" in value:
        raise BadInput(field, "contains a NUL character")
    return value


def add_column(columns: Columns, name: str, values: Sequence[Any], field: str) -> None:
    """Add one column of JSON scalars. Numbers, booleans (1 and 0) and nulls make a numeric
    column; a single string makes it a text column (its numbers written as text). Nested
    values are refused, as are infinities (JSON has none; a NaN is taken as missing)."""
    try:
        numbers = array("d", values)  # the common case, in C: refuses None, str, list
    except (TypeError, OverflowError):
        numbers = None
    if numbers is not None:
        if any(map(math.isinf, numbers)):
            raise BadInput(field, f"{name!r}: values must be finite numbers")
        columns.numeric[name] = numbers
        return
    texts: Texts = []
    is_text = False
    for value in values:
        if value is None:
            texts.append(None)
        elif isinstance(value, str):
            is_text = True
            texts.append(check_text(value, field))
        elif isinstance(value, bool | int | float):
            number = float(value)
            if math.isinf(number):
                raise BadInput(field, f"{name!r}: values must be finite numbers")
            texts.append(number_text(number))
        else:
            kind = "an object" if isinstance(value, dict) else type(value).__name__
            raise BadInput(field, f"{name!r}: values are numbers, strings or null, not {kind}")
    if is_text:
        columns.text[name] = texts
    else:
        columns.numeric[name] = array("d", (NAN if v is None else float(v) for v in texts))
