"""Drift through the inference job (real PostgreSQL, records ingested in process): drift
planted where it is known, references from the first window, a pinned range, an upload and a
stable version; each verdict and figure checked against scipy on the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from scipy import stats

from modelstats.etl import jobs, runner
from modelstats.etl.inference import datasets, monitors, references
from modelstats.store import db

W0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
JOB = jobs.parse({"source": "inference"})
MONITORS = """
defaults: {window: 1m, lateness: 30s, reference_min_rows: 500, min_rows: 100}
monitors:
  - model: pinned
    reference: {from: "2026-12-01T10:00:00Z", to: "2026-12-01T10:02:00Z"}
  - model: canary
    vs: {v2: v1}
"""


@pytest.fixture
def ingest(logged, monitors_file):
    monitors_file(MONITORS)

    def log(model: str, version: str, at: datetime, rows: dict[str, np.ndarray]) -> None:
        count = len(next(iter(rows.values())))
        records = [
            {
                "id": f"{model}-{version}-{at.isoformat()}-{i}",
                "time": (at + timedelta(milliseconds=i)).isoformat(),
                "features": {
                    k: v[i].item() if hasattr(v[i], "item") else v[i]
                    for k, v in rows.items()
                    if k != "prediction"
                },
                "prediction": rows["prediction"][i].item(),
            }
            for i in range(count)
        ]
        for first in range(0, count, 500):
            headers = {
                "ce-specversion": "1.0",
                "ce-id": f"{model}-{at.isoformat()}-{first}",
                "ce-source": "/tests/drift",
                "ce-type": "modelstats.inference.logged",
                "content-type": "application/json",
            }
            data = {"model": model, "version": version, "records": records[first : first + 500]}
            logged(headers, data)

    return log


def traffic(rng: np.random.Generator, rows: int, shift: float = 0.0, new_category: bool = False):
    countries = ["NL", "DE", "FR", "BE"] if new_category else ["NL", "DE", "FR"]
    shares = [0.35, 0.25, 0.15, 0.25] if new_category else [0.5, 0.3, 0.2]
    return {
        "amount": rng.normal(100 + 20 * shift, 20, rows),
        "country": np.array(rng.choice(countries, rows, p=shares), dtype=object),
        "tenure": rng.uniform(0, 10, rows),
        "prediction": rng.integers(0, 2, rows),
    }


def figures(reports: list[dict], version: str, at: datetime) -> dict:
    found: dict = {}
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    for r in reports:
        if r["version"] != version or r["time"] != stamp:
            continue
        key = (r["labels"].get("feature"), r["labels"].get("method"))
        found.setdefault(key, {}).update(r["metrics"])
    return found


def chi2(reference: np.ndarray, window: np.ndarray) -> float:
    categories = sorted(set(reference) | set(window))
    table = [
        [list(reference).count(c) for c in categories],
        [list(window).count(c) for c in categories],
    ]
    return stats.chi2_contingency(table).pvalue


def test_planted_drift_against_the_first_window(ingest, clean_db) -> None:
    rng = np.random.default_rng(21)
    first, moved, short = traffic(rng, 600), traffic(rng, 400, 0.5, True), traffic(rng, 50)
    ingest("fraud", "v1", W0, first)
    ingest("fraud", "v1", W0 + timedelta(minutes=1), moved)
    ingest("fraud", "v1", W0 + timedelta(minutes=2), short)
    reports = runner.run(JOB, now=W0 + timedelta(minutes=5)).reports

    itself = figures(reports, "v1", W0)
    assert itself[(None, None)]["drift_share"] == 0.0 and itself[(None, None)]["dataset_drift"] == 0
    assert itself[("amount", "ks")]["feature_drift"] == 1.0

    window = figures(reports, "v1", W0 + timedelta(minutes=1))
    ks = window[("amount", "ks")]
    assert ks["feature_drift"] == stats.ks_2samp(first["amount"], moved["amount"]).pvalue
    assert ks["feature_drifted"] == 1
    country = window[("country", "chisquare")]
    assert country["feature_drift"] == pytest.approx(
        chi2(first["country"], moved["country"]), rel=1e-12
    )
    assert country["feature_drifted"] == 1
    tenure = window[("tenure", "ks")]
    assert tenure["feature_drift"] == stats.ks_2samp(first["tenure"], moved["tenure"]).pvalue
    assert tenure["feature_drifted"] == 0
    assert window[("prediction", "z")]["feature_drifted"] in (0, 1)  # the prediction is judged too
    assert window[(None, None)]["drift_share"] == pytest.approx(2 / 3)
    assert window[(None, None)]["dataset_drift"] == 1
    assert window[(None, None)]["drift_rows_short"] == 0

    assert figures(reports, "v1", W0 + timedelta(minutes=2))[(None, None)]["drift_rows_short"] == 1
    with db.connection() as conn:
        (kept,) = [
            item for item in references.listing(conn, monitors.current()) if item.model == "fraud"
        ]
    assert kept.origin == "first:2026-12-01T10:00:00Z" and kept.rows == 600 and kept.exact


def test_a_pinned_range_is_cut_once_profiled_and_a_canary_uses_stable(ingest, clean_db) -> None:
    rng = np.random.default_rng(4)
    parts = [traffic(rng, 300), traffic(rng, 300), traffic(rng, 300, 1.0)]
    for minute, part in enumerate(parts):
        ingest("pinned", "v1", W0 + timedelta(minutes=minute), part)
    stable, canary = traffic(rng, 600), traffic(rng, 300, 0.5)
    ingest("canary", "v1", W0, stable)
    ingest("canary", "v2", W0 + timedelta(minutes=1), canary)
    reports = runner.run(JOB, now=W0 + timedelta(minutes=5)).reports

    assert not any(
        r["metrics"].get("feature_drift") is not None
        for r in reports
        if r["model"] == "pinned" and r["time"] < "2026-12-01T10:02"
    )
    pinned = [r for r in reports if r["model"] == "pinned"]
    third = figures(pinned, "v1", W0 + timedelta(minutes=2))
    reference_amounts = np.concatenate([parts[0]["amount"], parts[1]["amount"]])
    assert third[("amount", "ks")]["feature_drift"] == pytest.approx(
        stats.ks_2samp(reference_amounts, parts[2]["amount"]).pvalue, rel=1e-12
    )
    assert third[("amount", "ks")]["feature_drifted"] == 1

    canary_reports = [r for r in reports if r["model"] == "canary"]
    v2 = figures(canary_reports, "v2", W0 + timedelta(minutes=1))
    assert v2[("amount", "ks")]["feature_drift"] == pytest.approx(
        stats.ks_2samp(stable["amount"], canary["amount"]).pvalue, rel=1e-12
    )
    with psycopg.connect(clean_db) as conn:
        kept = conn.execute(
            "SELECT model, version, origin FROM inference_references ORDER BY 1, 2"
        ).fetchall()
    assert kept == [
        ("canary", "v1", "first:2026-12-01T10:00:00Z"),
        ("pinned", "v1", "range:2026-12-01T10:00:00Z/2026-12-01T10:02:00Z"),
    ]


def test_an_uploaded_reference_wins(ingest, clean_db, tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    training = traffic(rng, 800)
    path = tmp_path / "training.csv"
    lines = ["amount,country,tenure"] + [
        f"{a},{c},{t}"
        for a, c, t in zip(training["amount"], training["country"], training["tenure"], strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    dataset = datasets.read(path)
    with db.connection() as conn:
        kept = references.upload(conn, "fraud", "v1", path.name, dataset)
    assert kept.origin.startswith("upload:training.csv#") and kept.rows == 800
    window = traffic(rng, 600, 0.5)
    ingest("fraud", "v1", W0, window)
    reports = figures(runner.run(JOB, now=W0 + timedelta(minutes=5)).reports, "v1", W0)
    amounts = np.array([float(a) for a in training["amount"]])
    assert reports[("amount", "ks")]["feature_drift"] == pytest.approx(
        stats.ks_2samp(amounts, window["amount"]).pvalue, rel=1e-9
    )
    assert ("prediction", "z") not in reports  # the upload has no prediction column
    with db.connection() as conn:
        assert references.clear(conn, "fraud", "v1")
