"""Logged inference events built the way the loggers build them, for tests and benchmarks.

KServe's logger (kserve pkg/logger) sends each call as two binary-mode CloudEvents with the
same `ce-id` and source, types `org.kubeflow.serving.inference.request` / `.response`,
extensions `inferenceservicename`, `namespace`, `component`, `endpoint`, `metadata`, and the
model's own request content type on both halves. The V2 bodies here come from KServe's SDK
(`InferRequest.to_rest()`, `InferResponse.to_rest()`), as a KServe model server writes them.
Seldon Core's logger sends SeldonMessages with `requestid` and `modelid`, spec version 0.3.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np

from modelstats.core import contract, timestamps

LOGGER_SOURCE = "http://localhost:9081/"


def kserve_headers(
    kind: str,
    event_id: str,
    model: str,
    time: datetime,
    endpoint: str = "default",
    content_type: str = "application/json",
) -> dict[str, str]:
    event_type = contract.KSERVE_REQUEST if kind == "request" else contract.KSERVE_RESPONSE
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": LOGGER_SOURCE,
        "ce-type": event_type,
        "ce-time": timestamps.format(time),
        "ce-inferenceservicename": model,
        "ce-namespace": "models",
        "ce-component": "predictor",
        "ce-endpoint": endpoint,
        "ce-metadata": "{}",
        "content-type": content_type,
    }


def v2_request(inputs: dict[str, np.ndarray], model: str = "model") -> bytes:
    """A V2 request body holding `inputs` (name -> array whose first axis is the rows)."""
    from kserve import InferInput, InferRequest

    tensors = []
    for name, values in inputs.items():
        datatype = "BYTES" if values.dtype == object else "FP64"
        tensor = InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=False)
        tensors.append(tensor)
    body, _ = InferRequest(model_name=model, infer_inputs=tensors, request_id="r").to_rest()
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def v2_response(
    outputs: dict[str, np.ndarray], model: str = "model", version: str | None = None
) -> bytes:
    from kserve import InferOutput, InferResponse

    tensors = []
    for name, values in outputs.items():
        datatype = (
            "BYTES" if values.dtype == object else ("INT64" if values.dtype.kind == "i" else "FP64")
        )
        tensor = InferOutput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=False)
        tensors.append(tensor)
    response = InferResponse(
        response_id="r", model_name=model, infer_outputs=tensors, model_version=version
    )
    body, _ = response.to_rest()
    return json.dumps(body).encode()


def seldon_headers(kind: str, request_id: str, model: str, time: datetime) -> dict[str, str]:
    event_type = contract.SELDON_REQUEST if kind == "request" else contract.SELDON_RESPONSE
    return {
        "ce-specversion": "0.3",
        "ce-id": request_id,
        "ce-source": f"io.seldon.serving.deployment.{model}.models",
        "ce-type": event_type,
        "ce-time": timestamps.format(time),
        "ce-requestid": request_id,
        "ce-modelid": "classifier",
        "ce-inferenceservicename": model,
        "ce-namespace": "models",
        "ce-endpoint": "default",
        "content-type": "application/json",
    }


def seldon_message(rows: list[list[Any]], names: list[str] | None = None) -> bytes:
    data: dict[str, Any] = {"ndarray": rows}
    if names is not None:
        data["names"] = names
    return json.dumps({"data": data}).encode()
