"""The monitors file: defaults, globs, and errors that name the line and the field."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from modelstats.core.errors import ConfigError
from modelstats.etl.inference import monitors
from tests.configuration import configure

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_file_validates() -> None:
    loaded = monitors.load(str(ROOT / "infra/knative/monitors/monitors.yaml"))
    assert loaded.for_model("anything").window == timedelta(minutes=5)


def test_defaults_apply_to_listed_and_unlisted_models_and_the_first_match_wins() -> None:
    loaded = monitors.parse(
        "defaults: {window: 10m, lateness: 1m}\n"
        "monitors:\n"
        "  - model: fraud-*\n"
        "    features: {f0: amount}\n"
        "  - model: fraud-eu\n"
        "    window: 1m\n"
    )
    fraud = loaded.for_model("fraud-eu")
    assert fraud.window == timedelta(minutes=10) and fraud.lateness == timedelta(minutes=1)
    assert fraud.feature_name("f0") == "amount" and fraud.feature_name("f1") == "f1"
    assert loaded.for_model("churn").window == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("monitors:\n  - model: a\n    window: 30s\n", "line 3, field 'monitors[0].window'"),
        (
            "monitors:\n  - model: a\n  - model: b\n    colour: red\n",
            "line 4, field 'monitors[1].colour'",
        ),
        ("defaults:\n  task: guess\n", "line 2, field 'defaults.task'"),
        ("monitors:\n  - window: 5m\n", "line 2, field 'monitors[0].model'"),
        (
            "monitors:\n  - model: a\n    reference: {from: 2026-12-01T00:00:00Z}\n",
            "field 'monitors[0].reference",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_line_and_field(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as error:
        monitors.parse(text, "monitors.yaml")
    assert where in str(error.value)


def test_the_file_is_read_again_when_it_changes_and_a_bad_edit_keeps_the_last_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text("defaults: {window: 5m}\n")
    configure(MONITORS_FILE=str(path))
    monitors.reset()
    try:
        assert monitors.current().defaults.window == timedelta(minutes=5)
        time.sleep(0.01)
        path.write_text("defaults: {window: 15m}\n")
        assert monitors.current().defaults.window == timedelta(minutes=15)
        path.write_text("defaults: {window: nonsense}\n")
        assert monitors.current().defaults.window == timedelta(minutes=15)
    finally:
        monitors.reset()
