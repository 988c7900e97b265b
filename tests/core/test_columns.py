"""Columns: the byte codec round-trips any columns; values are read by JSON's types."""

from __future__ import annotations

import math
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelstats.core.columns import Columns, add_column, check_name, number_text
from modelstats.core.errors import BadInput

names = st.text(min_size=1, max_size=8).filter(lambda s: s.isprintable())
floats = st.floats(allow_nan=True, allow_infinity=False)
texts = st.one_of(st.none(), st.text(max_size=10).filter(lambda s: "\x00" not in s))


@st.composite
def columns(draw: st.DrawFn) -> Columns:
    rows = draw(st.integers(0, 20))
    numeric = draw(st.dictionaries(names, st.lists(floats, min_size=rows, max_size=rows)))
    text = draw(
        st.dictionaries(
            names.filter(lambda n: n not in numeric), st.lists(texts, min_size=rows, max_size=rows)
        )
    )
    return Columns(rows, {k: array("d", v) for k, v in numeric.items()}, text)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@given(columns())
def test_encode_then_decode_gives_the_same_columns(original: Columns) -> None:
    decoded = Columns.decode(original.encode())
    assert decoded.rows == original.rows
    assert decoded.text == original.text
    assert list(decoded.numeric) == list(original.numeric)
    for name, values in original.numeric.items():
        assert all(same(a, b) for a, b in zip(decoded.numeric[name], values, strict=True))


def test_concat_fills_missing_columns_and_turns_mixed_columns_into_text() -> None:
    first = Columns(2, {"a": array("d", [1.0, 2.5]), "b": array("d", [3.0, 4.0])})
    second = Columns(1, {"a": array("d", [7.0])}, {"b": ["x"], "c": ["y"]})
    merged = Columns.concat([first, second])
    assert merged.rows == 3
    assert list(merged.numeric["a"]) == [1.0, 2.5, 7.0]
    assert merged.text == {"b": ["3", "4", "x"], "c": [None, None, "y"]}
    assert merged.take([2, 0]).text["b"] == ["x", "3"]


def test_add_column_reads_json_scalars() -> None:
    columns = Columns(4)
    add_column(columns, "n", [1, 2.5, None, True], "data")
    add_column(columns, "t", ["a", 3, None, "b"], "data")
    assert list(columns.numeric["n"])[:2] == [1.0, 2.5]
    assert math.isnan(columns.numeric["n"][2]) and columns.numeric["n"][3] == 1.0
    assert columns.text["t"] == ["a", "3", None, "b"]
    assert number_text(3.0) == "3" and number_text(0.5) == "0.5" and number_text(math.nan) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, math.inf], "finite"),
        ([1, {"x": 1}], "not an object"),
        ([1, [1, 2]], "not list"),
        (["ok", "poison\ud800"], "lone surrogate"),
        (["nul\x00"], "NUL"),
    ],
)
def test_add_column_refuses_what_cannot_be_a_feature(values: list[object], message: str) -> None:
    with pytest.raises(BadInput) as error:
        add_column(Columns(len(values)), "f", values, "data.instances")
    assert error.value.field == "data.instances"
    assert message in error.value.message


def test_column_names_follow_the_label_rules() -> None:
    assert check_name("amount", "f", 200) == "amount"
    for bad in ("", " ", "a\nb", "x" * 201, 3):
        with pytest.raises(BadInput):
            check_name(bad, "f", 200)
