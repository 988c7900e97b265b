"""A Knative Service as a local process: what the stack says of the variables it leaves out."""

from __future__ import annotations

from pathlib import Path

from modelstats.local.knative import manifests
from modelstats.local.knative.resources import Container, Service
from modelstats.local.stack.services import left_out, service_env

ROOT = Path(__file__).resolve().parents[3]


def test_a_cluster_path_is_left_out_and_the_banner_says_what_is_read_instead(
    tmp_path: Path,
) -> None:
    alert = manifests.load(ROOT / "infra" / "knative").service("alert")
    assert alert is not None
    env, skipped = service_env(alert, {}, tmp_path, {})
    assert "ALERT_RULES_FILE" in skipped and "ALERT_RULES_FILE" not in env
    assert left_out(alert, "ALERT_RULES_FILE") == (
        "alert: ALERT_RULES_FILE=/etc/modelstats/rules/alert-rules.yaml is a path in the"
        " cluster's container (a mounted ConfigMap or volume), not on this machine: not passed,"
        " so alert uses its default, infra/knative/rules/alert-rules.yaml in the checkout"
    )


def test_a_variable_without_a_setting_of_its_name_falls_back_on_its_default() -> None:
    service = Service(
        name="probe",
        namespace="modelstats",
        container=Container(image="x", env={"PROBE_FILE": "/nowhere/probe.yaml"}),
        source="probe.yaml",
    )
    assert left_out(service, "PROBE_FILE").endswith("not passed, so probe uses its default")
