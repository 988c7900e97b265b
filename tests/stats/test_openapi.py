"""The OpenAPI document is true to the behaviour: real answers validate against its schemas."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from modelstats.stats import openapi
from modelstats.web import wrapper
from tests.configuration import configure
from tests.stats import inference_scenario
from tests.stats.samples import SOURCE, add_samples, client, hours_ago, iso


def _routes() -> list[Any]:
    spec = importlib.util.spec_from_file_location("stats_main_for_openapi", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Served as the wrapper serves them: its /healthz and /metrics, then the function's own.
    return [*wrapper.builtin_routes(wrapper.database_ready, None), *module.ROUTES]


def _schema_for(document: dict[str, Any], pattern: str, status: int, media: str) -> dict:
    operation = document["paths"][pattern]["get"]
    response = operation["responses"][str(status)]
    schema = response["content"][media]["schema"]
    # Resolve #/components/... against the whole document.
    return {**schema, "components": document["components"]}


def _check(document: dict[str, Any], pattern: str, response: Any) -> None:
    media = response.headers["content-type"].split(";")[0]
    schema = _schema_for(document, pattern, response.status_code, media)
    body = response.json() if media == "application/json" else response.text
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, f"{pattern} {response.status_code}: {errors[0]}"


def test_document_is_openapi_31_with_valid_schemas() -> None:
    document = openapi.document()
    assert document["openapi"] == "3.1.0"
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, item in document["paths"].items():
        for operation in item.values():
            assert operation["responses"], path
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in ("query", "path")
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path
                    assert parameter["required"] is True


def test_every_route_is_documented_and_nothing_else() -> None:
    patterns = {route.pattern for route in _routes()}
    assert patterns == set(openapi.document()["paths"])
    public = {route.pattern for route in _routes() if route.public}
    for path, item in openapi.document()["paths"].items():
        assert (item["get"].get("security") == []) == (path in public), path


@pytest.fixture
def seeded(clean_db: str) -> str:
    rows = []
    for i in range(40):
        rows.append(("Mistral", "v1", "accuracy", {"env": "prod"}, hours_ago(i), 0.5 + i / 100))
        rows.append(("Mistral", "v1", "latency", {}, hours_ago(i), 10.0 + i))
        rows.append(("Mistral", "v2", "accuracy", {}, hours_ago(i + 0.5), 0.6))
    rows.append(("Mistral", "v1", "latency", {}, hours_ago(24 * 6) - timedelta(minutes=3), 7.0))
    add_samples(clean_db, rows)
    return clean_db


CASES = [
    ("/stats/{model}/{version}", "/stats/Mistral/v1"),
    ("/stats/{model}/{version}", "/stats/Mistral/v1?bucket=1h&label.env=prod"),
    ("/stats/{model}/{version}", "/stats/Mistral/v1?since=7d"),  # rollups and sketches
    ("/stats/{model}/{version}", "/stats/Mistral/v1?since=7d&exact=true&metric=latency"),
    ("/stats/{model}/{version}", "/stats/Mistral/v1?bucket=6h&format=csv"),
    ("/stats/{model}/{version}", "/stats/Mistral/v1?metric=none"),
    ("/stats/{model}/{version}", "/stats/Mistral/v9"),
    ("/stats/{model}/{version}", "/stats/Mistral/v1?since=later"),
    ("/stats/{model}", "/stats/Mistral?baseline=v1&bucket=12h"),
    ("/stats/{model}", "/stats/Mistral?format=csv&bucket=1d"),
    ("/stats/{model}", "/stats/Unknown"),
    ("/stats/{model}", "/stats/Mistral?baseline=v7"),
    ("/models", "/models"),
    ("/models", "/models?since=2h"),
    ("/models", "/models?until=tomorrow"),
    ("/dead-letters", "/dead-letters?limit=5&pending=true"),
    ("/dead-letters", "/dead-letters?limit=x"),
    ("/healthz", "/healthz"),
    ("/openapi.json", "/openapi.json"),
    ("/stats/{model}/{version}", "/stats/Mistral/v1?bucket=auto&since=7d"),
    ("/stats/{model}/{version}", "/stats/Mistral/v1?since=300d&until=200d"),  # last_sample
    ("/stats/{model}", "/stats/Mistral?bucket=auto&since=300d&until=200d"),
    ("/drift/{model}/{version}", "/drift/Mistral/v1"),  # no inference figures: empty
    ("/drift/{model}/{version}", "/drift/Mistral/v1?since=x"),
    ("/drift/{model}/{version}", "/drift/Mistral/v7"),
    ("/accuracy/{model}/{version}", "/accuracy/Mistral/v1?horizon=1d"),
    ("/accuracy/{model}/{version}", "/accuracy/Mistral/v1?horizon=1y"),
    ("/overview", "/overview?since=7d"),
    ("/", "/"),
    ("/dashboard/{asset}", "/dashboard/app.js"),
    ("/dashboard/{asset}", "/dashboard/app.css"),
    ("/dashboard/{asset}", "/dashboard/nothing.js"),
]


def test_real_answers_validate_against_the_document(seeded: str) -> None:
    document = openapi.document()
    statuses = set()
    with client() as http:
        for pattern, url in CASES:
            response = http.get(url)
            statuses.add(response.status_code)
            _check(document, pattern, response)
    assert statuses == {200, 400, 404}


def test_inference_answers_validate_against_the_document(clean_db: str) -> None:
    scenario = inference_scenario.seed(clean_db, datetime.now(UTC))
    document = openapi.document()
    window = f"since={iso(scenario.since())}&until={iso(scenario.until())}"
    with client() as http:
        for pattern, url in [
            ("/drift/{model}/{version}", f"/drift/fraud/v1?{window}"),
            ("/drift/{model}/{version}", "/drift/fraud/v1?since=3d"),  # cells of 2 windows
            ("/accuracy/{model}/{version}", f"/accuracy/fraud/v1?{window}"),
            ("/overview", "/overview"),
        ]:
            response = http.get(url)
            assert response.status_code == 200, response.text
            _check(document, pattern, response)


SAMPLES = {"since": "2h", "until": "now", "metric": "x", "bucket": "1h", "baseline": "v1"}
SAMPLES["horizon"] = "3d"
SAMPLES["state"] = "firing"  # /alerts: a comma-separated list, so no enum in its schema


def _sample(parameter: dict[str, Any]) -> str:
    """A valid value for a documented query parameter (from its schema when not listed)."""
    if parameter["name"] in SAMPLES:
        return SAMPLES[parameter["name"]]
    schema = parameter["schema"]
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "integer":
        return str(schema.get("minimum", 1))
    if schema.get("type") == "boolean":
        return "false"
    return "x"


def test_documented_parameters_are_the_accepted_ones(seeded: str) -> None:
    """Every documented query parameter is accepted, and an undocumented one is refused."""
    with client() as http:
        for path, item in openapi.document()["paths"].items():
            url = path.replace("{model}", "Mistral").replace("{version}", "v1")
            url = url.replace("{asset}", "app.js")
            for parameter in item["get"].get("parameters", []):
                if parameter["in"] != "query":
                    continue
                response = http.get(url, params={parameter["name"]: _sample(parameter)})
                assert response.status_code == 200, (path, parameter["name"], response.text)
            # Static files take no parameters and, as files do, ignore a query string.
            if path not in ("/", "/dashboard/{asset}", "/healthz", "/openapi.json"):
                refused = http.get(url, params={"undocumented": "1"})
                assert refused.status_code == 400, path


def test_unauthorized_answer_is_documented(seeded: str) -> None:
    configure(STATS_API_TOKEN="t")
    with client() as http:
        response = http.get("/stats/Mistral/v1")
    assert response.status_code == 401
    _check(openapi.document(), "/stats/{model}/{version}", response)
