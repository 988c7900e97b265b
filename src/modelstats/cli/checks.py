"""Offline checks: manifests against Knative's and Kubernetes' rules, alert rules and monitors
files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from modelstats.cli.base import fail, in_checkout, main
from modelstats.core.errors import ModelstatsError


@main.command("check-manifests")
@click.argument("directory", required=False, type=click.Path(exists=True))
@click.option(
    "--crds",
    type=click.Path(file_okay=False, exists=True),
    help="The vendored CRD schemas (default: infra/crds in the checkout).",
)
@click.option("--kubernetes-version", default=None, help="Core kinds' schema version (e.g. 1.34).")
def check_manifests(
    directory: str | None, crds: str | None, kubernetes_version: str | None
) -> None:
    """Validate Knative and Kubernetes manifests offline: CRD schemas, webhook rules, core kinds.

    DIRECTORY holds the manifests (every *.yaml in it), or is one (multi-document) YAML file
    (default: infra/knative in the checkout).
    """
    from modelstats.devtools import checks, schemas

    try:
        manifests = Path(directory) if directory else in_checkout("infra/knative", "DIRECTORY")
        crd_dir = Path(crds) if crds else in_checkout("infra/crds", "--crds")
    except ModelstatsError as error:
        fail(error)
        return
    directory = str(directory or manifests)
    count, problems = checks.check_directory(
        manifests, crd_dir, kubernetes_version or schemas.KUBERNETES_VERSION
    )
    for problem in sorted(problems):
        click.echo(str(problem))
    click.echo(f"{count} document(s) in {directory}: {len(problems)} problem(s)", err=True)
    sys.exit(1 if problems else 0)


@main.command("check-rules")
@click.argument("path", required=False, envvar="ALERT_RULES_FILE", type=click.Path(dir_okay=False))
def check_rules(path: str | None) -> None:
    """Validate an alert rules file (as the alert function does when it starts).

    PATH defaults to ALERT_RULES_FILE, else the checkout's infra/knative/rules/alert-rules.yaml.
    """
    from modelstats.alert import rulebook

    try:
        path = path or str(in_checkout("infra/knative/rules/alert-rules.yaml", "PATH"))
        loaded = rulebook.load(path)
    except ModelstatsError as error:
        fail(error)
        return
    click.echo(f"{path}: {len(loaded)} rule(s) OK: {', '.join(r.name for r in loaded)}")


@main.command("check-monitors")
@click.argument("path", required=False, envvar="MONITORS_FILE", type=click.Path(dir_okay=False))
def check_monitors(path: str | None) -> None:
    """Validate a monitors file (as the etl's inference job does when it reads it).

    PATH defaults to MONITORS_FILE, else the checkout's infra/knative/monitors/monitors.yaml.
    """
    from modelstats.etl.inference import monitors

    try:
        path = path or str(in_checkout("infra/knative/monitors/monitors.yaml", "PATH"))
        loaded = monitors.load(path)
    except ModelstatsError as error:
        fail(error)
        return
    listed = ", ".join(m.model for m in loaded.monitors) or "none"
    click.echo(f"{path}: OK; defaults for every model, monitors: {listed}")
