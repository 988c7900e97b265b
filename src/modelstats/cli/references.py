"""`modelstats reference`: the drift reference of a model version (docs/inference.md)."""

from __future__ import annotations

from pathlib import Path

import click

from modelstats.cli.base import data_dir_option, fail, main, use_database
from modelstats.core.errors import ModelstatsError


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
        use_database(data_dir)
        with db.connection() as conn:
            listed = references.listing(conn, monitors.current(), model)
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
