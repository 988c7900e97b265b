"""The bodies model servers log, read into Columns: V1, V2 (Open Inference Protocol), Seldon.

Requests give features, responses give outputs (and scores); the body says which protocol it
speaks, whatever the content type the logger copied from the model's request:

| protocol | request | response |
|---|---|---|
| V1 | `{"instances": [row, ...]}` | `{"predictions": [row, ...]}` |
| V2 | `{"inputs": [tensor, ...]}` | `{"model_name", "model_version", "outputs": [tensor, ...]}` |
| Seldon | `{"data": {"names", "ndarray" or "tensor"}}` | the same shape |

Names. V1 rows that are objects name their features by key (a list value gives `<key>_<i>`);
rows that are lists give `f0`, `f1`, ...; scalars give `f0`. A V2 tensor of shape `[n]` or
`[n, 1]` is one column named after it; `[n, d]` gives `<name>_0` .. `<name>_<d-1>` (further
dimensions are flattened the same way). Seldon's `names` name the columns, else `f<i>`.

Outputs. A row of several numbers (a `[n, k]` tensor, a V1 list, a Seldon ndarray row) is read
as class probabilities: the prediction is the index of the largest (Seldon: its name from
`names`), the score is the probability of class 1 for two classes, else the largest. A V1
prediction that is an object gives one output per key. Errors name the field (`data.inputs[1].
shape`): rows that differ in length, a `data` whose length disagrees with its `shape`, an
unknown datatype, more features or rows than the limits (settings).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelstats.core.columns import NAN, Columns, Numbers, add_column, check_name, check_rows
from modelstats.core.errors import BadInput
from modelstats.core.settings import Settings

DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
    | {"FP16", "FP32", "FP64", "BYTES"}
)


@dataclass
class Outputs:
    """What a response says: predictions per output, scores for the outputs that have them,
    and the model version when the body names it (V2)."""

    values: Columns
    scores: Columns
    model_version: str | None = None


@dataclass
class _Limits:
    settings: Settings
    features: int = field(init=False)
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.features = self.settings.max_features
        self.rows = self.settings.max_rows

    def check(self, columns: Columns, field: str) -> Columns:
        if columns.rows > self.rows:
            raise BadInput(field, f"more than {self.rows} rows in one event")
        if len(columns) > self.features:
            raise BadInput(field, f"more than {self.features} features")
        check_rows(columns, field)
        return columns

    def name(self, name: object, field: str) -> str:
        return check_name(name, field, self.settings.max_name_length)


# --- requests ------------------------------------------------------------------------------


def request_columns(body: Any, settings: Settings, field: str = "data") -> Columns:
    """The features of a logged request body (V1, V2 or Seldon)."""
    limits = _Limits(settings)
    if isinstance(body, dict):
        if "instances" in body:
            return limits.check(_instances(body["instances"], f"{field}.instances", limits), field)
        if "inputs" in body:
            return limits.check(_tensors(body["inputs"], f"{field}.inputs", limits), field)
        if "data" in body:
            rows, names, where = _seldon(body["data"], f"{field}.data", limits)
            return limits.check(_list_rows(rows, where, limits, names), field)
    raise BadInput(
        field, "expected a V1 body {instances}, a V2 body {inputs} or a Seldon body {data}"
    )


def _rows_list(raw: Any, field: str, limits: _Limits) -> list[Any]:
    if not isinstance(raw, list) or not raw:
        raise BadInput(field, "must be a non-empty list of rows")
    if len(raw) > limits.rows:
        raise BadInput(field, f"more than {limits.rows} rows in one event")
    return raw


def _instances(raw: Any, field: str, limits: _Limits) -> Columns:
    rows = _rows_list(raw, field, limits)
    first = rows[0]
    if isinstance(first, dict):
        return _object_rows(rows, field, limits)
    if isinstance(first, list):
        return _list_rows(rows, field, limits, [])
    columns = Columns(len(rows))
    _scalar_rows(rows, field)
    add_column(columns, "f0", rows, field)
    return columns


def _scalar_rows(rows: list[Any], field: str) -> None:
    for i, row in enumerate(rows):
        if isinstance(row, dict | list):
            raise BadInput(f"{field}[{i}]", "rows mix scalars with lists or objects")


def _flat(values: list[Any], field: str) -> list[Any]:
    """A nested list in row-major order (V2 allows `data` nested as its shape)."""
    if not any(isinstance(value, list) for value in values):
        return values
    flat: list[Any] = []
    stack = [iter(values)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
        if len(stack) > 32:
            raise BadInput(field, "nested more than 32 levels deep")
    return flat


def _list_rows(rows: list[Any], field: str, limits: _Limits, names: Sequence[str]) -> Columns:
    flat_rows = []
    width = -1
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise BadInput(f"{field}[{i}]", "rows mix lists with scalars or objects")
        values = _flat(row, f"{field}[{i}]")
        if width == -1:
            width = len(values)
            if width > limits.features:
                raise BadInput(f"{field}[{i}]", f"more than {limits.features} features")
        elif len(values) != width:
            raise BadInput(f"{field}[{i}]", f"has {len(values)} values; row 0 has {width}")
        flat_rows.append(values)
    if width == 0:
        raise BadInput(f"{field}[0]", "a row holds no values")
    labels = list(names) if len(names) == width else [f"f{j}" for j in range(width)]
    columns = Columns(len(rows))
    for j, name in enumerate(labels):
        add_column(columns, name, [row[j] for row in flat_rows], field)
    return columns


def _object_rows(rows: list[Any], field: str, limits: _Limits) -> Columns:
    """Rows as objects: a key absent from a row is a missing value there."""
    expanded: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadInput(f"{field}[{i}]", "rows mix objects with lists or scalars")
        values: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, list):
                for j, item in enumerate(_flat(value, f"{field}[{i}].{key}")):
                    values[f"{key}_{j}"] = item
            else:
                values[key] = value
        for key in values:
            if key not in names:
                limits.name(key, f"{field}[{i}].{key}")
                names[key] = None
                if len(names) > limits.features:
                    raise BadInput(f"{field}[{i}]", f"more than {limits.features} features")
        expanded.append(values)
    columns = Columns(len(rows))
    for name in names:
        add_column(columns, name, [values.get(name) for values in expanded], field)
    return columns


def _tensors(raw: Any, field: str, limits: _Limits) -> Columns:
    if not isinstance(raw, list) or not raw:
        raise BadInput(field, "must be a non-empty list of tensors")
    columns: Columns | None = None
    for i, tensor in enumerate(raw):
        part = _tensor(tensor, f"{field}[{i}]", limits)
        if columns is None:
            columns = part
            continue
        if part.rows != columns.rows:
            raise BadInput(
                f"{field}[{i}].shape", f"{part.rows} rows; {field}[0] has {columns.rows}"
            )
        for name in part.names():
            if name in columns.numeric or name in columns.text:
                raise BadInput(f"{field}[{i}].name", f"{name!r} appears twice")
        columns.numeric.update(part.numeric)
        columns.text.update(part.text)
        if len(columns) > limits.features:
            raise BadInput(field, f"more than {limits.features} features")
    assert columns is not None
    return columns


def _shape(raw: Any, field: str) -> list[int]:
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw)
    ):
        raise BadInput(field, "must be a non-empty list of non-negative integers")
    return raw


def _tensor(raw: Any, field: str, limits: _Limits) -> Columns:
    if not isinstance(raw, dict):
        raise BadInput(field, "a tensor is an object {name, shape, datatype, data}")
    name = limits.name(raw.get("name"), f"{field}.name")
    shape = _shape(raw.get("shape"), f"{field}.shape")
    datatype = raw.get("datatype")
    if datatype not in DATATYPES:
        raise BadInput(f"{field}.datatype", f"unknown datatype {datatype!r}")
    data = raw.get("data")
    if not isinstance(data, list):
        raise BadInput(f"{field}.data", "must be a list")
    rows = shape[0]
    if rows > limits.rows:
        raise BadInput(f"{field}.shape", f"more than {limits.rows} rows in one event")
    width = math.prod(shape[1:])
    if width > limits.features:
        raise BadInput(f"{field}.shape", f"more than {limits.features} features")
    flat = _flat(data, f"{field}.data")
    if len(flat) != rows * width:
        raise BadInput(
            f"{field}.data", f"holds {len(flat)} values; shape {shape} needs {rows * width}"
        )
    if rows == 0 or width == 0:
        raise BadInput(f"{field}.shape", "holds no values")
    if datatype == "BYTES" and not all(isinstance(value, str) for value in flat):
        raise BadInput(f"{field}.data", "BYTES values must be strings")
    if datatype != "BYTES" and any(isinstance(value, str) for value in flat):
        raise BadInput(f"{field}.data", f"{datatype} values must be numbers")
    columns = Columns(rows)
    if width == 1:
        add_column(columns, name, flat, f"{field}.data")
    else:
        for j in range(width):
            add_column(columns, f"{name}_{j}", flat[j::width], f"{field}.data")
    return columns


# --- Seldon ---------------------------------------------------------------------------------


def _seldon(raw: Any, field: str, limits: _Limits) -> tuple[list[Any], list[str], str]:
    """A SeldonMessage's `data`: its rows (lists), its names, and where the rows are."""
    if not isinstance(raw, dict):
        raise BadInput(field, "must be an object {names, ndarray} or {names, tensor}")
    names = raw.get("names", [])
    if not isinstance(names, list):
        raise BadInput(f"{field}.names", "must be a list of strings")
    for i, name in enumerate(names):
        limits.name(name, f"{field}.names[{i}]")
    if "ndarray" in raw:
        where = f"{field}.ndarray"
        rows = _rows_list(raw["ndarray"], where, limits)
        if not isinstance(rows[0], list):
            _scalar_rows(rows, where)
            rows = [[value] for value in rows]
        return rows, names, where
    if "tensor" in raw:
        where = f"{field}.tensor"
        return _seldon_tensor(raw["tensor"], where, limits), names, where
    raise BadInput(field, "only ndarray and tensor data can be profiled")


def _seldon_tensor(raw: Any, field: str, limits: _Limits) -> list[Any]:
    if not isinstance(raw, dict):
        raise BadInput(field, "must be an object {shape, values}")
    shape = _shape(raw.get("shape"), f"{field}.shape")
    values = raw.get("values")
    if not isinstance(values, list):
        raise BadInput(f"{field}.values", "must be a list of numbers")
    rows, width = shape[0], math.prod(shape[1:])
    if rows > limits.rows:
        raise BadInput(f"{field}.shape", f"more than {limits.rows} rows in one event")
    if len(values) != rows * width:
        raise BadInput(
            f"{field}.values", f"holds {len(values)} values; shape {shape} needs {rows * width}"
        )
    if rows == 0 or width == 0:
        raise BadInput(f"{field}.shape", "holds no values")
    return [values[i * width : (i + 1) * width] for i in range(rows)]


# --- responses -----------------------------------------------------------------------------


def response_outputs(body: Any, settings: Settings, field: str = "data") -> Outputs:
    """The outputs of a logged response body (V1, V2 or Seldon)."""
    limits = _Limits(settings)
    if isinstance(body, dict):
        if "predictions" in body:
            outputs = _predictions(body["predictions"], f"{field}.predictions", limits)
        elif "outputs" in body:
            outputs = _output_tensors(body, field, limits)
        elif "data" in body:
            rows, names, where = _seldon(body["data"], f"{field}.data", limits)
            outputs = _probability_rows("predictions", rows, where, limits, names)
        else:
            outputs = None
        if outputs is not None:
            limits.check(outputs.values, field)
            return outputs
    raise BadInput(
        field, "expected a V1 body {predictions}, a V2 body {outputs} or a Seldon body {data}"
    )


def _predictions(raw: Any, field: str, limits: _Limits) -> Outputs:
    rows = _rows_list(raw, field, limits)
    if isinstance(rows[0], dict):
        values = _object_rows(rows, field, limits)
        return Outputs(values, Columns(values.rows))
    if isinstance(rows[0], list):
        return _probability_rows("predictions", rows, field, limits, [])
    _scalar_rows(rows, field)
    values = Columns(len(rows))
    add_column(values, "predictions", rows, field)
    return Outputs(values, Columns(len(rows)))


def _probability_rows(
    name: str, rows: list[Any], field: str, limits: _Limits, classes: Sequence[str]
) -> Outputs:
    """Rows of k numbers: k = 1 is the prediction itself; k > 1 are class probabilities."""
    matrix = _list_rows(rows, field, limits, [])
    if matrix.text:
        raise BadInput(field, "rows of several values must be numbers (class probabilities)")
    return _class_outputs(name, matrix.rows, list(matrix.numeric.values()), classes)


def _class_outputs(name: str, rows: int, columns: list[Numbers], classes: Sequence[str]) -> Outputs:
    values, scores = Columns(rows), Columns(rows)
    if len(columns) == 1:
        values.numeric[classes[0] if len(classes) == 1 else name] = columns[0]
        return Outputs(values, scores)
    predicted, score = _argmax(columns)
    if len(classes) == len(columns):
        values.text[name] = [None if i < 0 else classes[i] for i in predicted]
    else:
        values.numeric[name] = array("d", (NAN if i < 0 else float(i) for i in predicted))
    scores.numeric[name] = score
    return Outputs(values, scores)


def _argmax(columns: Sequence[Numbers]) -> tuple[list[int], array[float]]:
    """Per row: the index of the largest value (-1 for a row of NaNs) and the score (class 1's
    probability for two classes, else the largest)."""
    predicted: list[int] = []
    score = array("d")
    binary = len(columns) == 2
    for row in zip(*columns, strict=True):
        best, top = -1, -math.inf
        for i, value in enumerate(row):
            if value > top:
                best, top = i, value
        predicted.append(best)
        score.append(NAN if best < 0 else (row[1] if binary else top))
    return predicted, score


def _output_tensors(body: dict[str, Any], field: str, limits: _Limits) -> Outputs:
    raw = body["outputs"]
    where = f"{field}.outputs"
    if not isinstance(raw, list) or not raw:
        raise BadInput(where, "must be a non-empty list of tensors")
    version = body.get("model_version")
    if version is not None and version != "":
        version = limits.name(version, f"{field}.model_version")
    else:
        version = None
    values: Columns | None = None
    scores: Columns | None = None
    for i, tensor in enumerate(raw):
        part = _output_tensor(tensor, f"{where}[{i}]", limits)
        if values is None or scores is None:
            values, scores = part.values, part.scores
            continue
        if part.values.rows != values.rows:
            raise BadInput(
                f"{where}[{i}].shape", f"{part.values.rows} rows; {where}[0] has {values.rows}"
            )
        values.numeric.update(part.values.numeric)
        values.text.update(part.values.text)
        scores.numeric.update(part.scores.numeric)
    assert values is not None and scores is not None
    return Outputs(values, scores, version)


def _output_tensor(raw: Any, field: str, limits: _Limits) -> Outputs:
    columns = _tensor(raw, field, limits)
    if len(columns) == 1:
        return Outputs(columns, Columns(columns.rows))
    if columns.text:
        raise BadInput(f"{field}.datatype", "an output of several BYTES values per row")
    return _class_outputs(raw["name"], columns.rows, list(columns.numeric.values()), [])
