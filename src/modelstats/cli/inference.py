"""Inference monitoring's commands (docs/inference.md): `modelstats reference` (the drift
reference of a model version) and `modelstats labels load` (the truth, from a file)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from modelstats.cli.base import (
    data_dir_option,
    fail,
    in_checkout,
    main,
    resolve_data_dir,
    use_database,
)
from modelstats.core.errors import ConfigError, ModelstatsError


@main.group()
def reference() -> None:
    """The drift reference of a model version: set one from a file, show, clear."""


@reference.command("set")
@click.option("--model", required=True, help="The model (as its traffic names it).")
@click.option("--version", "version", required=True, help="The version it is the reference of.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
def set_reference(model: str, version: str, file: Path, data_dir: str | None) -> None:
    """Keep FILE (CSV, JSON lines or Parquet; training data, usually) as the reference; it wins
    over the monitors file's `reference` until `modelstats reference clear`."""
    from modelstats.core import reports
    from modelstats.etl.inference import datasets, references
    from modelstats.store import db

    try:
        reports.check_name(model, "--model", 200)
        reports.check_name(version, "--version", 200)
        dataset = datasets.read(file)
        use_database(data_dir)
        with db.connection() as conn:
            kept = references.upload(conn, model, version, file.name, dataset)
    except ModelstatsError as error:
        fail(error)
        return
    how = "kept whole (drift is exact)" if kept.exact else "kept as sketches (over 100,000 rows)"
    click.echo(f"{model} {version}: reference {kept.origin}, {kept.rows} rows, {how}")
    for name, kind in datasets.kinds(dataset).items():
        click.echo(f"  {name}: {kind}")


@reference.command("show")
@click.option("--model", help="Only this model.")
@data_dir_option
def show_reference(model: str | None, data_dir: str | None) -> None:
    """Which reference is in force for each version, and how many rows it holds."""
    from modelstats.etl.inference import monitors, references
    from modelstats.store import db

    try:
        path = os.environ.get("MONITORS_FILE") or str(
            in_checkout("infra/knative/monitors/monitors.yaml", "MONITORS_FILE")
        )
        watched = monitors.load(path)
        use_database(data_dir)
        with db.connection() as conn:
            listed = references.listing(conn, watched, model)
    except ModelstatsError as error:
        fail(error)
        return
    if not listed:
        click.echo("no references, and no profiled versions yet")
    for item in listed:
        if item.rows is None:
            click.echo(f"{item.model} {item.version}: none yet; in force once there: {item.origin}")
            continue
        how = "rows kept" if item.exact else "sketches"
        made = item.created_at.isoformat() if item.created_at else "?"
        click.echo(
            f"{item.model} {item.version}: {item.origin}, {item.rows} rows ({how}), since {made}"
        )


@reference.command("clear")
@click.option("--model", required=True)
@click.option("--version", "version", required=True)
@data_dir_option
def clear_reference(model: str, version: str, data_dir: str | None) -> None:
    """Forget the version's reference: the monitors file's setting takes over at the next window."""
    from modelstats.etl.inference import references
    from modelstats.store import db

    try:
        use_database(data_dir)
        with db.connection() as conn:
            cleared = references.clear(conn, model, version)
    except ModelstatsError as error:
        fail(error)
        return
    click.echo(f"{model} {version}: " + ("reference cleared" if cleared else "had no reference"))


@main.group()
def labels() -> None:
    """Labels: the truth about logged rows, learnt after their prediction."""


@labels.command("load")
@click.option("--model", required=True, help="The model whose rows the labels are of.")
@click.option("--broker", "broker_url", help="Broker ingress URL (default: the running stack's).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
def load_labels(model: str, broker_url: str | None, file: Path, data_dir: str | None) -> None:
    """Send the labels of FILE (CSV with columns id,label[,time], or JSON lines of
    {"id", "label", "time"?}) to the broker as modelstats.label.reported events."""
    from modelstats.client import Reporter
    from modelstats.etl.inference import datasets
    from modelstats.local.stack.state import StackState

    try:
        rows = datasets.read_labels(file)
        running = StackState.running(resolve_data_dir(data_dir))
        url = broker_url or (running.broker if running else "")
        if not url:
            raise ConfigError(
                "no broker: pass --broker, or start the stack (make run) with this --data-dir"
            )
        with Reporter(url, source=f"/modelstats/cli/labels/{file.name}") as reporter:
            for row in rows:
                reporter.label(model, row.id, row.label, time=row.time)
            reporter.flush(timeout=60)
            counters = reporter.counters
    except ModelstatsError as error:
        fail(error)
        return
    click.echo(
        f"{model}: {counters.sent} label(s) sent to {url} in {counters.events} event(s),"
        f" {counters.failed} refused, {counters.pending} not sent"
    )
    if counters.failed or counters.pending:
        click.echo(f"last error: {counters.last_error}", err=True)
        raise SystemExit(1)
