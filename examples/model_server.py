"""A model server that reports to modelstats: a sketch to copy from.

A toy fraud detector (a logistic score of the amount) behind `POST /predict`, served by
Starlette on uvicorn (both come with modelstats; FastAPI works the same way). Every
prediction reports its inference time and score through `AsyncReporter`; when the caller
knows the truth (`"fraud": true/false`), whether the prediction was right goes along as
`prediction_accuracy` (1 or 0: the stats' mean is then the accuracy).

    .venv/bin/python examples/model_server.py --broker http://127.0.0.1:8080/modelstats/default
    curl -X POST http://127.0.0.1:9000/predict -d '{"amount": 420.5, "fraud": false}'
    curl http://127.0.0.1:8081/stats/fraud-detector/v3

The reporter is opened and closed with the app (the lifespan): report() only buffers, so a
prediction never waits for modelstats, and Ctrl-C sends what is still buffered.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from modelstats.client import AsyncReporter

MODEL, VERSION = "fraud-detector", "v3"


def score(amount: float) -> float:
    """The "model": the larger the amount, the likelier a fraud."""
    return 1 / (1 + math.exp(-(amount - 1000) / 200))


def build_app(broker: str, env: str) -> Starlette:
    reporter = AsyncReporter(broker, source=f"/examples/model-server/{env}")

    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        started = time.perf_counter()
        fraud_score = score(float(body["amount"]))
        elapsed_ms = (time.perf_counter() - started) * 1000
        metrics = {"inference_time": elapsed_ms, "score": fraud_score}
        if isinstance(body.get("fraud"), bool):
            metrics["prediction_accuracy"] = float((fraud_score > 0.5) == body["fraud"])
        reporter.report(MODEL, VERSION, metrics, labels={"env": env})
        return JSONResponse({"fraud": fraud_score > 0.5, "score": fraud_score})

    async def counters(request: Request) -> JSONResponse:
        # What a health page or a metrics exporter would show.
        return JSONResponse(dataclasses.asdict(reporter.counters))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with reporter:
            yield

    routes = [Route("/predict", predict, methods=["POST"]), Route("/reporter", counters)]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default="http://127.0.0.1:8080/modelstats/default")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--env", default="dev", help="the `env` label of every report")
    args = parser.parse_args()
    uvicorn.run(build_app(args.broker, args.env), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
