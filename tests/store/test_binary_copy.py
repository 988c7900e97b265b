"""Binary COPY rows built from numpy columns: what PostgreSQL reads back, and the same table as
psycopg's own per-row binary encoding gives."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pytest

from modelstats.store import binary_copy
from modelstats.store.binary_copy import Bool, Float8, Text, Timestamptz

Connection = psycopg.Connection[Any]
COLUMNS = "model text, id text, version text, window_start timestamptz, time timestamptz,"
COLUMNS += " prediction text, value float8, score float8"
NAMES = "model, id, version, window_start, time, prediction, value, score"
TYPES = ["text", "text", "text", "timestamptz", "timestamptz", "text", "float8", "float8"]


@pytest.fixture
def conn(database_url: str) -> Iterator[Connection]:
    with psycopg.connect(database_url) as connection:
        connection.execute("SET TIME ZONE 'UTC'")
        connection.execute(f"CREATE TEMP TABLE actual ({COLUMNS})")
        yield connection


def copy_rows(
    conn: Connection, table: str, count: int, fields: Sequence[binary_copy.Field]
) -> None:
    with conn.cursor().copy(f"COPY {table} ({NAMES}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(binary_copy.SIGNATURE + binary_copy.rows(count, fields) + binary_copy.TRAILER)


def moment(seconds: float) -> datetime | None:
    return None if math.isnan(seconds) else datetime.fromtimestamp(seconds, UTC)


def number(value: float) -> float | None:
    return None if math.isnan(value) else value


def test_rows_read_back_as_the_values_they_were_made_of(conn: Connection) -> None:
    ids = ["a", None, "", "é", "日本", "🙂 emoji", "x" * 300]
    times = np.array([1767571200.123456, np.nan, 0.0, -1.5, 946684800.0, 1767571200.5, 4e9])
    predictions = ["0", "1", "1", "0", "1", "0", "1"]  # all one byte: laid out as cells
    values = np.array([-1e300, np.nan, 1.7976931348623157e308, np.inf, -np.inf, -0.0, 0.1])
    scores = np.array([np.nan] * 7)
    window = 1767571140.25
    copy_rows(
        conn,
        "actual",
        7,
        [
            Text("fraud-model"),
            Text(ids),
            Text("v2 ünïcode"),
            Timestamptz(window),
            Timestamptz(times),
            Text(predictions),
            Float8(values),
            Float8(scores),
        ],
    )

    got = conn.execute(f"SELECT {NAMES} FROM actual").fetchall()
    expected = [
        (
            "fraud-model",
            ids[i],
            "v2 ünïcode",
            datetime(2026, 1, 4, 23, 59, 0, 250000, tzinfo=UTC),
            moment(times[i]),
            predictions[i],
            number(values[i]),
            None,
        )
        for i in range(7)
    ]
    assert got == expected
    assert got[0][4] == datetime(2026, 1, 5, 0, 0, 0, 123456, tzinfo=UTC)
    assert got[2][4] == datetime(1970, 1, 1, tzinfo=UTC)
    assert math.copysign(1.0, got[5][6]) == -1.0  # -0.0 kept


def test_a_null_constant_timestamp_and_all_null_text_are_nulls(conn: Connection) -> None:
    copy_rows(
        conn,
        "actual",
        3,
        [
            Text("m"),
            Text([None, None, None]),
            Text(""),
            Timestamptz(float("nan")),
            Timestamptz(np.array([1.0, 2.0, 3.0])),
            Text(["", "", ""]),
            Float8(np.zeros(3)),
            Float8(np.ones(3)),
        ],
    )
    got = conn.execute("SELECT id, version, window_start, prediction FROM actual").fetchall()
    assert got == [(None, "", None, "")] * 3


def test_a_boolean_is_one_value_for_every_row(conn: Connection) -> None:
    conn.execute("CREATE TEMP TABLE flags (id text, flag boolean)")
    for flag in (True, False):
        data = binary_copy.rows(3, [Text(["a", "b", None]), Bool(flag)])
        with conn.cursor().copy("COPY flags (id, flag) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(binary_copy.SIGNATURE + data + binary_copy.TRAILER)
    got = conn.execute("SELECT id, flag FROM flags").fetchall()
    assert got == [
        ("a", True),
        ("b", True),
        (None, True),
        ("a", False),
        ("b", False),
        (None, False),
    ]


def random_columns(rng: np.random.Generator, count: int) -> dict[str, Any]:
    words = np.array(["ok", "", "é", "日本語", "🙂", "spam and eggs", "0", "1"], dtype=object)
    ids: list[str | None] = [f"{i}-{w}" for i, w in enumerate(rng.choice(words, count))]
    for i in rng.choice(count, count // 10, replace=False):
        ids[i] = None
    predictions = [
        None if p is None else str(p) for p in rng.choice(["0", "1", "cat", None], count)
    ]
    # Sub-microsecond fractions too: the rounding must be fromtimestamp's.
    times = 1767571200 + rng.uniform(0, 86_400, count)
    times[rng.choice(count, count // 20, replace=False)] = np.nan
    values = rng.normal(0, 1e6, count)
    values[rng.choice(count, count // 10, replace=False)] = np.nan
    values[:3] = [np.inf, -np.inf, -0.0]
    scores = rng.random(count)
    scores[rng.choice(count, count // 3, replace=False)] = np.nan
    return {
        "ids": ids,
        "versions": [str(v) for v in rng.choice(["v1", "v2", "version-three"], count)],
        "times": times,
        "predictions": predictions,
        "values": values,
        "scores": scores,
    }


def test_the_table_is_the_one_psycopg_writes_row_by_row(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 1_000
    columns = random_columns(np.random.default_rng(20260105), count)
    window = 1767571140.000_000_5  # half a microsecond: rounds to even
    conn.execute(f"CREATE TEMP TABLE expected ({COLUMNS})")
    with conn.cursor().copy(f"COPY expected ({NAMES}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(TYPES)
        for i in range(count):
            copy.write_row(
                (
                    "model-ü",
                    columns["ids"][i],
                    columns["versions"][i],
                    datetime.fromtimestamp(window, UTC),
                    moment(columns["times"][i]),
                    columns["predictions"][i],
                    number(columns["values"][i]),
                    number(columns["scores"][i]),
                )
            )
    # Chunks of 64 rows: their boundaries fall among NULLs and texts of every length.
    monkeypatch.setattr(binary_copy, "_CHUNK_ROWS", 64)
    copy_rows(
        conn,
        "actual",
        count,
        [
            Text("model-ü"),
            Text(columns["ids"]),
            Text(columns["versions"]),
            Timestamptz(window),
            Timestamptz(columns["times"]),
            Text(columns["predictions"]),
            Float8(columns["values"]),
            Float8(columns["scores"]),
        ],
    )

    # Rows as text: floats to the last digit (and -0), timestamps to the microsecond.
    def rows(table: str) -> str:
        return f"SELECT t::text FROM {table} t"

    assert conn.execute("SELECT count(*) FROM actual").fetchone() == (count,)
    assert conn.execute("SELECT count(*) FROM expected").fetchone() == (count,)
    assert conn.execute(f"{rows('expected')} EXCEPT ALL {rows('actual')}").fetchall() == []
    assert conn.execute(f"{rows('actual')} EXCEPT ALL {rows('expected')}").fetchall() == []
    nulls = conn.execute(
        "SELECT count(*) FILTER (WHERE id IS NULL), count(*) FILTER (WHERE time IS NULL)"
        " FROM actual"
    ).fetchone()
    assert nulls == (count // 10, count // 20)


def test_a_few_long_values_among_short_ones(conn: Connection) -> None:
    count = 2_000
    ids = [str(i) for i in range(count)]
    ids[7] = "long " * 40_000
    ids[1_500] = "é" * 100_000
    copy_rows(
        conn,
        "actual",
        count,
        [
            Text("m"),
            Text(ids),
            Text("v"),
            Timestamptz(0.0),
            Timestamptz(0.0),
            Text(ids),
            Float8(np.arange(count, dtype=np.float64)),
            Float8(np.full(count, np.nan)),
        ],
    )
    got = conn.execute("SELECT id, prediction, value FROM actual").fetchall()
    assert got == [(ids[i], ids[i], float(i)) for i in range(count)]


def test_timestamps_round_to_the_microsecond_as_datetime_fromtimestamp_does() -> None:
    rng = np.random.default_rng(7)
    seconds = np.concatenate(
        [
            [1767571200.123456, 0.0, -0.5e-6, 0.5e-6, 1.5e-6, 2.5e-6, -1.5e-6, -2.5e-6],
            [0.9999995, -0.9999995, -1e-7, 1767571200.0000005, 1767571200.0000015],
            1767571200 + rng.uniform(0, 86_400, 20_000),
            rng.uniform(-3e9, 5e9, 20_000),
        ]
    )
    data = binary_copy.rows(seconds.size, [Timestamptz(seconds)])
    # Each row: field count (2), length (4), microseconds from 2000-01-01 (8).
    micros = np.frombuffer(data, np.uint8).reshape(-1, 14)[:, 6:].copy().view(">i8").ravel()
    postgres_epoch = datetime(2000, 1, 1, tzinfo=UTC)
    expected = [
        (datetime.fromtimestamp(s, UTC) - postgres_epoch) // datetime.resolution
        for s in seconds.tolist()
    ]
    assert micros.tolist() == expected


def test_the_format_around_the_rows() -> None:
    assert binary_copy.SIGNATURE == b"PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    assert binary_copy.TRAILER == b"\xff\xff"
    one = binary_copy.rows(1, [Text("ab"), Float8(np.array([np.nan]))])
    assert one == b"\x00\x02" + b"\x00\x00\x00\x02ab" + b"\xff\xff\xff\xff"


def test_no_rows_are_no_bytes() -> None:
    fields = [
        Text([]),
        Text("m"),
        Float8(np.array([])),
        Timestamptz(np.array([])),
        Timestamptz(1.0),
    ]
    assert binary_copy.rows(0, fields) == b""


def test_a_text_holding_nul_is_refused() -> None:
    with pytest.raises(ValueError, match=r"field 1 \(Text\) has a value containing NUL"):
        binary_copy.rows(3, [Text("m"), Text(["a", "b\x00c", "d"])])
    with pytest.raises(ValueError, match=r"field 0 \(Text\) has a value containing NUL"):
        binary_copy.rows(2, [Text("m\x00")])
    with pytest.raises(ValueError, match="NUL"):
        binary_copy.rows(2, [Text([None, "\x00"])])


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (Text(["a", "b"]), r"field 1 \(Text\) has 2 values for 3 rows"),
        (Float8(np.zeros(4)), r"field 1 \(Float8\) has 4 values for 3 rows"),
        (Timestamptz(np.zeros(2)), r"field 1 \(Timestamptz\) has 2 values for 3 rows"),
        (Float8(np.zeros((3, 1))), r"field 1 \(Float8\) needs a one-dimensional array"),
    ],
)
def test_a_field_with_the_wrong_number_of_values_is_named(
    field: binary_copy.Field, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        binary_copy.rows(3, [Text("m"), field])


def test_a_time_postgresql_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match=r"field 0 \(Timestamptz\) has a time outside"):
        binary_copy.rows(2, [Timestamptz(np.array([0.0, np.inf]))])
    with pytest.raises(ValueError, match="outside PostgreSQL's range"):
        binary_copy.rows(1, [Timestamptz(1e300)])
