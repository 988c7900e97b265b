"""PostgreSQL's binary COPY format, built column by column from numpy arrays.

The inference job copies a million prediction rows per tick. Through psycopg's
`copy.write_row`, once per row, encoding them costs about 1.2 s of Python, more than the
server takes to insert them. Here each column is encoded as a whole, and the rows are laid
out with numpy, with no Python work per row:

    copy.write(binary_copy.SIGNATURE)
    copy.write(binary_copy.rows(count, [Text(ids), Timestamptz(times), Float8(scores)]))
    copy.write(binary_copy.TRAILER)

The format (PostgreSQL's docs, "COPY", "Binary Format"): the signature, int32 flags and
int32 header-extension length; per row an int16 field count, then per field an int32 byte
length (-1 for NULL, no data then) and the data; int16 -1 at the end. All big-endian.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)


@dataclass(frozen=True)
class Text:
    """UTF-8 text: one value per row (None is NULL), as a sequence or an object array, or one
    str for every row."""

    values: Sequence[str | None] | np.ndarray | str


@dataclass(frozen=True)
class Float8:
    """float8: one float64 per row; NaN is NULL (infinities are kept)."""

    values: np.ndarray


@dataclass(frozen=True)
class Timestamptz:
    """timestamptz from Unix seconds: one per row, or one for every row; NaN is NULL."""

    seconds: np.ndarray | float


@dataclass(frozen=True)
class Bool:
    """boolean: one value for every row."""

    value: bool


Field = Text | Float8 | Timestamptz | Bool

_POSTGRES_EPOCH = 946_684_800  # 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp zero
# PostgreSQL's timestamp range in whole seconds from its epoch (MIN_TIMESTAMP, END_TIMESTAMP):
# within it the microseconds fit an int64 with room to spare.
_FIRST_SECOND = -211_813_488_000
_END_SECOND = 9_223_371_331_200
# Rows laid out at a time. A chunk's arrays (a few MB) are reused from the heap; a million
# rows at once would take fresh memory for every temporary, several times slower.
_CHUNK_ROWS = 32_768
# A chunk is padded to its widest values (below): when that would more than double its
# bytes (a few long values among short ones), it is laid out in halves.
_PADDING_ALLOWED = 1 << 20


def rows(count: int, fields: Sequence[Field]) -> bytes:
    """`count` rows of these fields, in order, without signature or trailer."""
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    for position, field in enumerate(fields):
        _check_size(position, field, count)
    if count == 0:
        return b""
    columns = [_column(position, field, count) for position, field in enumerate(fields)]
    field_count = np.frombuffer(len(fields).to_bytes(2, "big"), np.uint8)
    pieces: list[bytes] = []
    for first in range(0, count, _CHUNK_ROWS):
        _lay_out(columns, field_count, first, min(first + _CHUNK_ROWS, count), pieces)
    return b"".join(pieces)


def _check_size(position: int, field: Field, count: int) -> None:
    if isinstance(field, Bool):
        return
    if isinstance(field, Text):
        if isinstance(field.values, str):
            return
        size = len(field.values)
    else:
        values = np.asarray(field.values if isinstance(field, Float8) else field.seconds)
        if values.ndim == 0 and isinstance(field, Timestamptz):
            return
        if values.ndim != 1:
            raise ValueError(
                f"field {position} ({type(field).__name__}) needs a one-dimensional array,"
                f" got shape {values.shape}"
            )
        size = values.size
    if size != count:
        raise ValueError(
            f"field {position} ({type(field).__name__}) has {size} values for {count} rows"
        )


@dataclass(frozen=True)
class _Column:
    """A field encoded: each row's byte length (-1 for NULL) and its bytes, either

    - `cells`: one row of bytes per row, all as wide (a constant is one row broadcast; a NULL
      row's cell is ignored), or
    - `data`: every row's bytes, each followed by one spare byte (the separator the text was
      joined with), row i's from `bounds[i]` to `bounds[i + 1]`.
    """

    lengths: np.ndarray
    cells: np.ndarray | None = None
    data: np.ndarray | None = None
    bounds: np.ndarray | None = None


def _lay_out(
    columns: list[_Column], field_count: np.ndarray, first: int, end: int, pieces: list[bytes]
) -> None:
    """Append rows [first, end) to `pieces`.

    Each row goes into a row of a matrix, every field in columns as wide as its widest value
    in the chunk, beside a mask of the bytes that are the row's; the masked bytes, in order,
    are the rows. Filling column slices and compacting by a mask are numpy's fast paths:
    about twice as fast here as scattering every byte to its offset through an index array.
    """
    count = end - first
    lengths = [column.lengths[first:end] for column in columns]
    sizes = [np.maximum(length, 0) for length in lengths]
    widths = [
        column.cells.shape[1] if column.cells is not None else int(size.max()) + 1
        for column, size in zip(columns, sizes, strict=True)
    ]
    row_width = 2 + sum(4 + width for width in widths)
    row_bytes = count * (2 + 4 * len(columns)) + sum(int(size.sum()) for size in sizes)
    if count > 1 and count * row_width > 2 * row_bytes + _PADDING_ALLOWED:
        middle = (first + end) // 2
        _lay_out(columns, field_count, first, middle, pieces)
        _lay_out(columns, field_count, middle, end, pieces)
        return
    matrix = np.empty((count, row_width), np.uint8)
    kept = np.ones(matrix.shape, bool)
    matrix[:, :2] = field_count
    at = 2
    for column, length, size, width in zip(columns, lengths, sizes, widths, strict=True):
        matrix[:, at : at + 4] = length.astype(">i4").view(np.uint8).reshape(count, 4)
        at += 4
        cells = matrix[:, at : at + width]
        if column.cells is not None:
            cells[...] = column.cells[first:end]
            present = length >= 0
            if not present.all():
                kept[:, at : at + width] = present[:, None]
        else:
            assert column.data is not None and column.bounds is not None
            # Each value goes in with the separator after it, which the mask then leaves out.
            offsets = np.arange(width)
            cells[offsets <= size[:, None]] = column.data[column.bounds[first] : column.bounds[end]]
            kept[:, at : at + width] = offsets < size[:, None]
        at += width
    pieces.append(matrix[kept].tobytes())


def _column(position: int, field: Field, count: int) -> _Column:
    if isinstance(field, Text):
        return _text(position, field.values, count)
    if isinstance(field, Bool):
        cell = np.array([[1 if field.value else 0]], np.uint8)
        return _Column(np.full(count, 1, np.int64), cells=np.broadcast_to(cell, (count, 1)))
    if isinstance(field, Float8):
        values = np.asarray(field.values, dtype=np.float64)
        lengths = np.where(np.isnan(values), -1, 8)
        return _Column(lengths, cells=values.astype(">f8").view(np.uint8).reshape(count, 8))
    seconds = np.asarray(field.seconds, dtype=np.float64)
    if seconds.ndim == 0:
        cell = _microseconds(position, seconds.reshape(1))
        lengths = np.full(count, -1 if np.isnan(seconds) else 8, np.int64)
        return _Column(lengths, cells=np.broadcast_to(cell, (count, 8)))
    lengths = np.where(np.isnan(seconds), -1, 8)
    return _Column(lengths, cells=_microseconds(position, seconds))


def _text(position: int, values: Sequence[str | None] | np.ndarray | str, count: int) -> _Column:
    if isinstance(values, str):
        encoded = np.frombuffer(values.encode(), np.uint8)
        if (encoded == 0).any():
            raise ValueError(_nul_message(position))
        lengths = np.full(count, encoded.size, np.int64)
        return _Column(lengths, cells=np.broadcast_to(encoded, (count, encoded.size)))
    nulls = None
    try:
        joined = "\x00".join(values)  # type: ignore[arg-type]  # None fails: handled below
    except TypeError:
        # Some values are None (or not str, which the join below reports).
        objects = np.array(values, dtype=object)
        nulls = np.equal(objects, np.array(None))
        objects[nulls] = ""
        try:
            joined = "\x00".join(objects.tolist())
        except TypeError as error:
            raise TypeError(f"field {position} (Text): {error}") from None
    # One encode for the column. Its zero bytes are the separators (UTF-8 has no other unless
    # a value holds a NUL), which give each value's bytes; one more ends the last value.
    encoded = np.frombuffer((joined + "\x00").encode(), np.uint8)
    separators = np.flatnonzero(encoded == 0)
    if separators.size != count:
        raise ValueError(_nul_message(position))
    bounds = np.concatenate(([0], separators + 1))
    lengths = np.diff(bounds) - 1
    if nulls is None and (lengths == lengths[0]).all():
        return _Column(lengths, cells=encoded.reshape(count, -1)[:, :-1])
    if nulls is not None:
        lengths[nulls] = -1
    return _Column(lengths, data=encoded, bounds=bounds)


def _nul_message(position: int) -> str:
    return (
        f"field {position} (Text) has a value containing NUL (\\x00),"
        " which PostgreSQL text cannot hold"
    )


def _microseconds(position: int, seconds: np.ndarray) -> np.ndarray:
    """Big-endian int64 microseconds from PostgreSQL's epoch, one row of 8 bytes per value.

    Rounded as `datetime.fromtimestamp` rounds (the fraction of the Unix seconds, times 1e6,
    half to even), so a row matches the datetime psycopg would have been given.
    """
    fraction, whole = np.modf(np.where(np.isnan(seconds), 0.0, seconds))
    whole -= _POSTGRES_EPOCH  # exact: whole seconds this size are integers in a float64
    if not (
        np.isfinite(whole).all() and whole.min() >= _FIRST_SECOND and whole.max() < _END_SECOND
    ):
        raise ValueError(f"field {position} (Timestamptz) has a time outside PostgreSQL's range")
    micros = whole.astype(np.int64) * 1_000_000 + np.rint(fraction * 1e6).astype(np.int64)
    return micros.astype(">i8").view(np.uint8).reshape(-1, 8)
