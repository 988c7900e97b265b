"""The process's settings: read from the environment on first use, or given explicitly."""

from __future__ import annotations

import os
from dataclasses import replace

from modelstats.core import settings
from tests.configuration import configure


def test_read_from_the_environment_on_first_use_and_kept(monkeypatch):
    monkeypatch.setenv("MAX_LABELS_PER_REPORT", "7")
    assert settings.get_settings().max_labels == 7
    monkeypatch.setenv("MAX_LABELS_PER_REPORT", "9")
    assert settings.get_settings().max_labels == 7  # read once
    settings.forget()
    assert settings.get_settings().max_labels == 9


def test_given_settings_hold_until_forgotten(monkeypatch):
    monkeypatch.setenv("MAX_LABELS_PER_REPORT", "7")
    settings.use(replace(settings.from_environment(), max_labels=3))
    assert settings.get_settings().max_labels == 3
    settings.forget()
    assert settings.get_settings().max_labels == 7


def test_configure_parses_variables_without_touching_the_environment(monkeypatch):
    monkeypatch.delenv("ETL_ROOT", raising=False)
    chosen = configure(ETL_ROOT="relative/logs", MAX_METRICS_PER_REPORT="5")
    assert settings.get_settings() is chosen
    assert chosen.etl_root is not None and chosen.etl_root.endswith("/relative/logs")
    assert chosen.max_metrics == 5
    assert configure(ETL_ROOT=None).etl_root is None
    assert configure().max_metrics == 5  # on top of the settings in use
    assert "ETL_ROOT" not in os.environ
