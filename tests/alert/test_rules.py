"""Alert rules (the YAML file and its errors) and the alert lifecycle, without a database."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelstats.alert import rulebook, rules
from modelstats.alert.state import AlertState, expire, step
from modelstats.cli import main as cli
from modelstats.core.errors import ConfigError
from tests.configuration import configure

ROOT = Path(__file__).resolve().parents[2]


def parse(text: str) -> list[rules.Rule]:
    return rulebook.parse(textwrap.dedent(text), origin="test.yaml")


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return str(caught.value)


SHIPPED = ROOT / "infra" / "knative" / "rules" / "alert-rules.yaml"


def test_shipped_rules_judge_a_window_and_watch_for_silence():
    accuracy, silent, dataset, prediction, labelled = rulebook.load(SHIPPED)
    assert isinstance(accuracy, rules.Rule) and isinstance(silent, rules.AbsenceRule)
    assert (accuracy.metric, accuracy.op, accuracy.threshold) == ("prediction_accuracy", "<", 0.3)
    assert (accuracy.window, accuracy.aggregation, accuracy.min_samples, accuracy.for_) == (
        timedelta(minutes=5),
        "mean",
        5,
        timedelta(minutes=5),
    )
    assert (silent.name, silent.absent_for, silent.seen_within, silent.per) == (
        "ModelSilent",
        timedelta(minutes=15),
        timedelta(days=1),
        "model",
    )
    # Inference monitoring's (docs/inference.md): two windows in a row, on its own samples.
    for rule, metric in ((dataset, "dataset_drift"), (prediction, "feature_drifted")):
        assert isinstance(rule, rules.Rule) and rule.metric == metric
        assert rule.for_ == timedelta(minutes=5) and rule.match.labels["source"] == "inference"
    assert prediction.match.labels["feature"] == "prediction"
    assert isinstance(labelled, rules.Rule) and labelled.name == "LowAccuracy"
    assert (labelled.metric, labelled.op, labelled.threshold) == ("prediction_accuracy", "<", 0.7)
    (coverage,) = labelled.when.items()
    assert (coverage[0], coverage[1].op, coverage[1].threshold) == ("label_coverage", ">=", 0.5)


def commented_rules(text: str) -> str:
    """The example rules the shipped file holds as comments, uncommented."""
    lines = [line[4:] for line in text.splitlines() if line.startswith(("  # - ", "  #   "))]
    return "rules:\n" + "\n".join("  " + line for line in lines)


def test_shipped_examples_are_valid_rules_and_one_is_the_first_versions():
    examples = {rule.name: rule for rule in parse(commented_rules(SHIPPED.read_text()))}
    assert set(examples) == {"LowPredictionAccuracySample", "SlowInference"}
    first = examples["LowPredictionAccuracySample"]
    assert isinstance(first, rules.Rule)
    assert (first.metric, first.op, first.threshold, first.window) == (
        "prediction_accuracy",
        "<",
        0.3,
        None,
    )
    assert first.render_summary("Mistral", "v1", {}, 0.19) == "prediction_accuracy lower than 0.3"


def test_a_full_rule_and_its_defaults():
    full, minimal = parse(
        """
        rules:
          - name: SlowInference
            metric: inference_time
            op: ">="
            threshold: 500
            match: {model: "Mistral*", version: "v?", labels: {env: prod}}
            window: 15m
            aggregate: p95
            min_samples: 20
            for: 10m
            keep_firing_for: 5m
            repeat_interval: 1h
            severity: critical
            summary: "p95 of {model} {version} is {value} ms ({op} {threshold})"
          - {name: Minimal, metric: m, op: "<", threshold: 1}
        """
    )
    assert full.window == timedelta(minutes=15) and full.aggregation == "p95"
    assert (full.min_samples, full.for_, full.keep_firing_for) == (
        20,
        timedelta(minutes=10),
        timedelta(minutes=5),
    )
    assert full.render_summary("Mistral-7B", "v2", {}, 612.5) == (
        "p95 of Mistral-7B v2 is 612.5 ms (>= 500)"
    )
    assert minimal.repeat_interval == timedelta(hours=4)
    assert (minimal.severity, minimal.min_samples, minimal.aggregation) == ("warning", 1, None)
    windowed = parse("rules: [{name: W, metric: m, op: '>', threshold: 2, window: 1h}]")[0]
    assert windowed.aggregation == "mean"
    assert windowed.render_summary("a", "b", {}, 3) == "mean of m over 1h higher than 2"


def test_matching_globs_and_labels():
    (rule,) = parse(
        """
        rules:
          - name: R
            metric: accuracy
            op: "<"
            threshold: 1
            match: {model: "Mis*", version: "v[12]", labels: {env: prod}}
        """
    )
    assert rule.applies_to("Mistral", "v1", "accuracy", {"env": "prod", "zone": "a"})
    assert not rule.applies_to("Mistral", "v1", "drift", {"env": "prod"})
    assert not rule.applies_to("Mistral", "v3", "accuracy", {"env": "prod"})
    assert not rule.applies_to("GPT", "v1", "accuracy", {"env": "prod"})
    assert not rule.applies_to("Mistral", "v1", "accuracy", {"env": "dev"})
    assert not rule.applies_to("Mistral", "v1", "accuracy", {})
    # Globs are case-sensitive, like model names.
    assert not rule.applies_to("mistral", "v1", "accuracy", {"env": "prod"})


@pytest.mark.parametrize(
    ("op", "holds", "fails"),
    [("<", 0.29, 0.3), ("<=", 0.3, 0.31), (">", 0.31, 0.3), (">=", 0.3, 0.29)],
)
def test_operators(op, holds, fails):
    (rule,) = parse(f"rules: [{{name: R, metric: m, op: '{op}', threshold: 0.3}}]")
    assert rule.holds(holds) and not rule.holds(fails)


@pytest.mark.parametrize(
    ("rule", "field", "words"),
    [
        ("{name: A, metric: m, op: '==', threshold: 1}", "op", "'<', '<=', '>' or '>='"),
        ("{name: A, metric: m, op: '<', threshold: 'low'}", "threshold", "must be a number"),
        ("{name: A, metric: m, op: '<', threshold: .nan}", "threshold", "finite"),
        ("{name: A, metric: m, op: '<'}", "threshold", "Field required"),
        ("{name: A, metric: m, op: '<', threshold: 1, window: 5q}", "window", "duration"),
        ("{name: A, metric: m, op: '<', threshold: 1, window: 0s}", "window", "longer than 0s"),
        ("{name: A, metric: m, op: '<', threshold: 1, for: 10}", "for", "duration"),
        ("{name: A, metric: m, op: '<', threshold: 1, aggregate: mean}", "aggregate", "window"),
        (
            "{name: A, metric: m, op: '<', threshold: 1, window: 1h, aggregate: avg}",
            "aggregate",
            "'mean'",
        ),
        ("{name: A, metric: m, op: '<', threshold: 1, min_samples: 5}", "min_samples", "window"),
        (
            "{name: A, metric: m, op: '<', threshold: 1, window: 1h, min_samples: 0}",
            "min_samples",
            "greater than or equal to 1",
        ),
        (
            "{name: A, metric: m, op: '<', threshold: 1, repeat_interval: 0s}",
            "repeat_interval",
            "0s",
        ),
        ("{name: A, metric: m, op: '<', threshold: 1, summary: '{oops}'}", "summary", "{oops}"),
        (
            "{name: A, metric: m, op: '<', threshold: 1, summary: '{value:q}'}",
            "summary",
            "template",
        ),
        ("{name: A, metric: m, op: '<', threshold: 1, treshold: 2}", "treshold", "Extra inputs"),
        ("{name: A, metric: m, op: '<', threshold: 1, match: {model: 3}}", "match.model", "string"),
        ("{name: A, metric: m, op: '<', threshold: 1, match: {label: {}}}", "match.label", "Extra"),
        ("{name: '', metric: m, op: '<', threshold: 1}", "name", "at least 1"),
        (
            "{name: A, metric: m, op: '<', threshold: 1, when: {c: about 3}}",
            "when.c",
            "an operator and a number",
        ),
        ("{name: A, metric: m, op: '<', threshold: 1, when: {c: '>= x'}}", "when.c", "a number"),
        ("{name: A, metric: m, op: '<', threshold: 1, when: {m: '> 1'}}", "when", "other metrics"),
        ("{name: A, metric: m, op: '<', threshold: 1, stale_after: 0s}", "stale_after", "0s"),
        ("{name: A, absent_for: 0s}", "absent_for", "longer than 0s"),
        ("{name: A, absent_for: 1h, seen_within: 30m}", "seen_within", "longer than absent_for"),
        ("{name: A, absent_for: 1h, per: version}", "per", "'model' or 'series'"),
        ("{name: A, absent_for: 1h, op: '<'}", "op", "Extra inputs"),
        ("{name: A, absent_for: 1h, for: 5m}", "for", "Extra inputs"),
    ],
)
def test_malformed_rules_name_the_rule_and_the_field(rule, field, words):
    message = error_of(
        f"rules:\n  - {{name: Good, metric: m, op: '<', threshold: 1}}\n  - {rule}\n"
    )
    assert message.startswith("test.yaml: ")
    where = "rule 'A' (rules[1])" if "name: A" in rule else "rule rules[1]"
    assert f"{where}, field '{field}'" in message, message
    assert words in message, message


def test_when_judges_a_report_by_its_other_metrics():
    (rule,) = parse(
        "rules: [{name: R, metric: acc, op: '<', threshold: 0.5, when: {cov: '>= 0.5', n: '>20'}}]"
    )
    assert {name: str(condition) for name, condition in rule.when.items()} == {
        "cov": ">= 0.5",
        "n": "> 20",
    }
    assert rule.judges({"acc": 0.1, "cov": 0.5, "n": 21})
    assert not rule.judges({"acc": 0.1, "cov": 0.49, "n": 21})
    assert not rule.judges({"acc": 0.1, "n": 21})  # no coverage: not judged
    assert not rule.judges({"cov": 0.9, "n": 30})  # not its metric


def test_an_absence_rule_and_its_defaults():
    (rule,) = parse("rules: [{name: ModelSilent, absent_for: 15m}]")
    assert isinstance(rule, rules.AbsenceRule)
    assert (rule.seen_within, rule.per, rule.metric) == (timedelta(days=1), "model", None)
    assert (rule.op, rule.threshold, rule.for_, rule.window) == (">=", 900, timedelta(0), None)
    assert rule.holds(900) and not rule.holds(899)
    assert rule.render_summary("fraud-detector", "*", {}, 900) == (
        "fraud-detector has sent no sample for 15m"
    )
    (series,) = parse(
        "rules: [{name: S, absent_for: 1h, per: series, summary: '{model} {version} {value}s'}]"
    )
    assert series.render_summary("m", "v1", {}, 4000) == "m v1 4000s"


def test_how_long_until_a_series_is_stale():
    assert rule().stale_after == timedelta(minutes=15)
    assert rule(window="5m").stale_after == timedelta(minutes=5)
    assert rule(window="5m", stale_after="1h").stale_after == timedelta(hours=1)


def test_file_level_errors():
    assert "rule 'A' (rules[1]), field 'name'" in error_of(
        "rules: [{name: A, metric: m, op: '<', threshold: 1},"
        " {name: A, metric: n, op: '>', threshold: 2}]"
    )
    assert "not valid YAML" in error_of("rules: [")
    assert "a mapping with a 'rules' list" in error_of("")
    assert "field 'rules'" in error_of("rules: 3")
    assert "field 'rule'" in error_of("rule: []")
    assert "rule rules[0]" in error_of("rules: [3]")
    # Every problem is listed, not just the first.
    both = error_of("rules: [{name: A, metric: m, op: '!', threshold: x}]")
    assert "field 'op'" in both and "field 'threshold'" in both


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="No such file"):
        rulebook.load(tmp_path / "nope.yaml")


def test_check_rules_command(tmp_path):
    runner = CliRunner()
    good = runner.invoke(cli, ["check-rules", str(SHIPPED)])
    assert good.exit_code == 0
    assert (
        "5 rule(s) OK: LowPredictionAccuracy, ModelSilent, DatasetDrift, PredictionDrift,"
        " LowAccuracy" in good.output
    )
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text("rules:\n  - {name: Broken, metric: m, op: '<', threshold: 1, for: x}\n")
    bad = runner.invoke(cli, ["check-rules", str(bad_path)])
    assert bad.exit_code == 1
    assert "rule 'Broken' (rules[0]), field 'for'" in bad.output


def test_current_reloads_a_changed_file_and_keeps_the_last_good_rules(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: A, metric: m, op: '<', threshold: 1}]")
    configure(ALERT_RULES_FILE=str(path))
    rulebook.reset()
    try:
        assert [r.name for r in rulebook.current()] == ["A"]
        path.write_text("rules: [{name: B, metric: m, op: '<', threshold: 1}, {name: C}]")
        assert [r.name for r in rulebook.current()] == ["A"]  # broken edit: the last good rules
        path.write_text("rules: [{name: B, metric: m, op: '<', threshold: 2.5}]")
        assert [r.name for r in rulebook.current()] == ["B"]
    finally:
        rulebook.reset()


# The lifecycle, one observation at a time (sample times from T, wall clock from NOW).

T = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def rule(**extra: str) -> rules.Rule:
    fields = "".join(f", {k}: {v}" for k, v in extra.items())
    return parse(f"rules: [{{name: R, metric: m, op: '<', threshold: 0.3{fields}}}]")[0]


def run(r: rules.Rule, *observations: tuple[float, float | None, float]) -> list[str | None]:
    """(sample seconds, value, wall seconds) -> the kind of each change (None: no change)."""
    state = AlertState()
    kinds = []
    for seconds, value, wall in observations:
        change = step(
            state, r, T + timedelta(seconds=seconds), value, NOW + timedelta(seconds=wall)
        )
        kinds.append(change.kind if change else None)
    return kinds


def test_lifecycle_fire_hold_resolve():
    assert run(rule(), (0, 0.5, 0), (1, 0.1, 1), (2, 0.1, 2), (3, 0.5, 3), (4, 0.5, 4)) == [
        None,
        "firing",
        None,
        "resolved",
        None,
    ]


def test_lifecycle_for_and_cancel():
    r = rule(**{"for": "1m"})
    assert run(r, (0, 0.1, 0), (30, 0.1, 1), (60, 0.1, 2)) == ["pending", None, "firing"]
    assert run(r, (0, 0.1, 0), (30, 0.5, 1), (40, 0.1, 2)) == ["pending", "inactive", "pending"]


def test_lifecycle_repeat_uses_the_wall_clock():
    r = rule(repeat_interval="10m")
    kinds = run(r, (0, 0.1, 0), (1, 0.1, 599), (2, 0.1, 600), (3, 0.1, 900), (4, 0.1, 1200))
    assert kinds == ["firing", None, "repeat", None, "repeat"]


def test_lifecycle_keep_firing_for():
    r = rule(keep_firing_for="5m")
    kinds = run(r, (0, 0.1, 0), (60, 0.5, 1), (299, 0.5, 2), (300, 0.5, 3))
    assert kinds == ["firing", None, None, "resolved"]
    # Holding again within keep_firing_for: the same alert goes on.
    assert run(r, (0, 0.1, 0), (60, 0.5, 1), (120, 0.1, 2), (400, 0.5, 3)) == [
        "firing",
        None,
        None,
        None,
    ]


def test_lifecycle_ignores_stale_and_unevaluable_observations():
    kinds = run(rule(), (10, 0.1, 0), (5, 0.9, 1), (11, None, 2), (10, 0.9, 3))
    assert kinds == ["firing", None, None, "resolved"]


def fired(r: rules.Rule) -> AlertState:
    """The state once `r` fired on a sample at T, evaluated at T."""
    state = AlertState()
    change = step(state, r, T, 0.1, T)
    assert change is not None and change.kind == "firing"
    return state


def test_expire_repeats_a_firing_alert_then_ends_it_when_its_series_goes_stale():
    r = rule(repeat_interval="10m", stale_after="30m")
    state = fired(r)
    changes = [expire(state, r, 0.1, T + timedelta(minutes=m)) for m in (5, 10, 19, 31, 40)]
    assert [c.kind if c else None for c in changes] == [None, "repeat", None, "resolved", None]
    resolved = changes[3]
    assert resolved is not None and resolved.at == T + timedelta(minutes=30)
    assert state.state == "inactive" and state.last_eval_at == T  # a newer sample is judged


def test_expire_waits_for_keep_firing_for_and_ends_pending_alerts_quietly():
    r = rule(stale_after="10m", keep_firing_for="30m")
    state = fired(r)
    assert expire(state, r, 0.1, T + timedelta(minutes=29)) is None
    change = expire(state, r, 0.1, T + timedelta(minutes=45))
    assert change is not None and (change.kind, change.at) == (
        "resolved",
        T + timedelta(minutes=30),
    )
    pending = rule(**{"for": "1h"})
    state = AlertState()
    step(state, pending, T, 0.1, T)
    change = expire(state, pending, 0.1, T + timedelta(minutes=15))
    assert change is not None and (change.kind, change.notifies) == ("inactive", False)
    assert expire(AlertState(), pending, 0.1, T) is None
