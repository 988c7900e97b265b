"""KServe's inference logger, played locally: the traffic of infra/examples/kserve-iris.yaml.

Sends what an InferenceService with `logger: {mode: all, url: <broker>}` sends for each call:
two binary CloudEvents with the same ce-id, `org.kubeflow.serving.inference.request` with the V2
request body and `.response` with the V2 response body (`model_version` v1), extensions
`inferenceservicename`, `namespace`, `component`, `endpoint`. The calls are spread over the
last `--spread` minutes (closed windows are profiled at the next tick of the inference job);
`--drift` shifts the petal features of the second half of them. With `--labels`, the truth
about every call follows as modelstats.label.reported events (through the reporter).

    .venv/bin/python examples/kserve_logger.py --broker http://127.0.0.1:8080/modelstats/default
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from modelstats.client import Reporter

MODEL = "sklearn-iris"
SPECIES = ("setosa", "versicolor", "virginica")
# Mean sepal length, sepal width, petal length, petal width per species (Fisher's iris).
MEANS = ((5.0, 3.4, 1.5, 0.2), (5.9, 2.8, 4.3, 1.3), (6.6, 3.0, 5.6, 2.0))


def call(rng: random.Random, drifted: bool) -> tuple[list[float], list[float], int]:
    species = rng.randrange(3)
    features = [round(rng.gauss(mean, 0.3), 2) for mean in MEANS[species]]
    if drifted:
        features[2] = round(features[2] + 1.2, 2)
        features[3] = round(features[3] + 0.6, 2)
    # A plain nearest-mean classifier stands in for the model: its class probabilities.
    distances = [sum((f - m) ** 2 for f, m in zip(features, mean, strict=True)) for mean in MEANS]
    weights = [2.718**-d for d in distances]
    probabilities = [round(w / sum(weights), 4) for w in weights]
    return features, probabilities, species


def headers(kind: str, call_id: str, at: datetime) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": call_id,
        "ce-source": "http://sklearn-iris-predictor.models/",
        "ce-type": f"org.kubeflow.serving.inference.{kind}",
        "ce-time": at.isoformat().replace("+00:00", "Z"),
        "ce-inferenceservicename": MODEL,
        "ce-namespace": "models",
        "ce-component": "predictor",
        "ce-endpoint": "default",
        "ce-metadata": "{}",
        "content-type": "application/json",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="http://127.0.0.1:8080/modelstats/default")
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--spread", type=float, default=15, help="minutes back from now")
    parser.add_argument("--drift", action="store_true", help="shift the second half's petals")
    parser.add_argument("--labels", action="store_true", help="then send the truth of each call")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    truths: list[tuple[str, str]] = []
    with httpx.Client(timeout=10) as client:
        for i in range(args.calls):
            at = (
                now
                - timedelta(minutes=args.spread)
                + timedelta(minutes=args.spread * i / args.calls)
            )
            features, probabilities, species = call(rng, args.drift and i >= args.calls // 2)
            call_id = str(uuid.uuid4())
            request = {
                "inputs": [
                    {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": features}
                ]
            }
            response = {
                "model_name": MODEL,
                "model_version": "v1",
                "id": call_id,
                "outputs": [
                    {"name": "output-0", "shape": [1, 3], "datatype": "FP32", "data": probabilities}
                ],
            }
            for kind, body in (("request", request), ("response", response)):
                answer = client.post(
                    args.broker, headers=headers(kind, call_id, at), content=json.dumps(body)
                )
                if answer.status_code != 202:
                    print(
                        f"call {i}: the broker answered {answer.status_code}: {answer.text}",
                        file=sys.stderr,
                    )
                    return 1
            truths.append((call_id, str(species)))
    print(f"sent {args.calls} calls of {MODEL} ({2 * args.calls} logger events)")
    if args.labels:
        with Reporter(args.broker, source="/examples/kserve-logger") as reporter:
            for call_id, species in truths:
                reporter.label(MODEL, call_id, int(species))
            reporter.flush(timeout=30)
        print(f"sent {len(truths)} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
