"""Logged bodies read into columns: V1, V2 (real bodies from KServe's SDK) and Seldon."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from modelstats.core.errors import BadInput
from modelstats.core.settings import from_environment
from modelstats.ingest import protocols
from tests.loggers import v2_request, v2_response

SETTINGS = from_environment({})


def numbers(columns, name):
    return list(columns.numeric[name])


def test_v2_request_tensors_become_named_columns() -> None:
    body = json.loads(
        v2_request(
            {
                "x": np.arange(6, dtype=np.float64).reshape(3, 2),
                "age": np.array([31.0, 45.0, 52.0]),
                "country": np.array(["NL", "DE", "NL"], dtype=object),
            }
        )
    )
    columns = protocols.request_columns(body, SETTINGS)
    assert columns.rows == 3
    assert numbers(columns, "x_0") == [0, 2, 4] and numbers(columns, "x_1") == [1, 3, 5]
    assert numbers(columns, "age") == [31, 45, 52]
    assert columns.text == {"country": ["NL", "DE", "NL"]}


def test_v2_response_probabilities_give_argmax_and_class_one_score() -> None:
    probabilities = np.array([[0.2, 0.8], [0.9, 0.1]])
    body = json.loads(v2_response({"p": probabilities}, version="v3"))
    outputs = protocols.response_outputs(body, SETTINGS)
    assert outputs.model_version == "v3"
    assert numbers(outputs.values, "p") == [1.0, 0.0]
    assert numbers(outputs.scores, "p") == [0.8, 0.1]  # the positive class, not the maximum


def test_v2_response_of_several_classes_scores_the_maximum() -> None:
    body = json.loads(v2_response({"p": np.array([[0.1, 0.2, 0.7]])}))
    outputs = protocols.response_outputs(body, SETTINGS)
    assert numbers(outputs.values, "p") == [2.0] and numbers(outputs.scores, "p") == [0.7]


def test_v2_nested_data_is_read_in_row_major_order() -> None:
    body = {
        "inputs": [{"name": "t", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]}]
    }
    columns = protocols.request_columns(body, SETTINGS)
    assert numbers(columns, "t_0") == [1, 3] and numbers(columns, "t_1") == [2, 4]


def test_v1_rows_as_lists_objects_and_scalars() -> None:
    lists = protocols.request_columns({"instances": [[1, 2], [3, 4]]}, SETTINGS)
    assert numbers(lists, "f0") == [1, 3] and numbers(lists, "f1") == [2, 4]
    objects = protocols.request_columns(
        {"instances": [{"amount": 10, "tags": [1, 2]}, {"amount": 20, "city": "Oslo"}]}, SETTINGS
    )
    assert numbers(objects, "amount") == [10, 20]
    assert numbers(objects, "tags_0")[0] == 1 and math.isnan(numbers(objects, "tags_0")[1])
    assert objects.text["city"] == [None, "Oslo"]
    scalars = protocols.request_columns({"instances": [5, 6, 7]}, SETTINGS)
    assert numbers(scalars, "f0") == [5, 6, 7]


def test_v1_predictions() -> None:
    scalars = protocols.response_outputs({"predictions": [1, 0, 1]}, SETTINGS)
    assert numbers(scalars.values, "predictions") == [1, 0, 1]
    probabilities = protocols.response_outputs({"predictions": [[0.3, 0.7]]}, SETTINGS)
    assert numbers(probabilities.values, "predictions") == [1]
    assert numbers(probabilities.scores, "predictions") == [0.7]
    objects = protocols.response_outputs({"predictions": [{"label": "cat"}]}, SETTINGS)
    assert objects.values.text == {"label": ["cat"]}


def test_seldon_messages() -> None:
    request = {"data": {"names": ["a", "b"], "ndarray": [[1, 2], [3, 4]]}}
    columns = protocols.request_columns(request, SETTINGS)
    assert numbers(columns, "a") == [1, 3] and numbers(columns, "b") == [2, 4]
    tensor = {"data": {"tensor": {"shape": [2, 1], "values": [5, 6]}}}
    assert numbers(protocols.request_columns(tensor, SETTINGS), "f0") == [5, 6]
    classes = {"data": {"names": ["t:0", "t:1", "t:2"], "ndarray": [[0.1, 0.2, 0.7]]}}
    outputs = protocols.response_outputs(classes, SETTINGS)
    assert outputs.values.text == {"predictions": ["t:2"]}
    assert numbers(outputs.scores, "predictions") == [0.7]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"instances": [[1, 2], [3]]}, "data.instances[1]", "row 0 has 2"),
        ({"instances": []}, "data.instances", "non-empty"),
        ({"instances": [[1], {"a": 1}]}, "data.instances[1]", "mix"),
        (
            {"inputs": [{"name": "t", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]},
            "data.inputs[0].data",
            "shape [2, 2] needs 4",
        ),
        (
            {"inputs": [{"name": "t", "shape": [1], "datatype": "FP128", "data": [1]}]},
            "data.inputs[0].datatype",
            "unknown datatype",
        ),
        (
            {"inputs": [{"name": "t", "shape": [1], "datatype": "FP32", "data": ["x"]}]},
            "data.inputs[0].data",
            "must be numbers",
        ),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]},
                    {"name": "b", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]},
                ]
            },
            "data.inputs[1].shape",
            "3 rows",
        ),
        ({"instances": [list(range(101))]}, "data.instances[0]", "more than 100 features"),
        ({"instances": [[1]] * 10_001}, "data.instances", "more than 10000 rows"),
        ({"data": {"strData": "hello"}}, "data.data", "ndarray and tensor"),
        ({"something": 1}, "data", "expected a V1 body"),
    ],
)
def test_bad_bodies_name_the_field(body: object, field: str, message: str) -> None:
    with pytest.raises(BadInput) as error:
        protocols.request_columns(body, SETTINGS)
    assert error.value.field == field
    assert message in error.value.message
