"""The `modelstats` command line. Each command is a thin shell over a core module."""

from __future__ import annotations

import sys

import click

from . import durations
from .errors import ModelstatsError
from .settings import get_settings


@click.group()
@click.version_option(package_name="modelstats")
def main() -> None:
    """modelstats: metrics, stats and alerts for AI models."""


def _fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


@main.command()
@click.option("--database-url", envvar="DATABASE_URL", help="libpq URL (default: $DATABASE_URL).")
def migrate(database_url: str | None) -> None:
    """Apply pending schema migrations (idempotent; safe to run from several pods at once)."""
    from . import migrate as migrations

    if not database_url:
        _fail(ModelstatsError("DATABASE_URL is not set and --database-url not given"))
        return
    try:
        applied = migrations.migrate(database_url)
    except ModelstatsError as error:
        _fail(error)
        return
    if applied:
        for migration in applied:
            click.echo(f"applied {migration.version:04d}_{migration.name}")
    else:
        click.echo("schema is up to date")


@main.command()
@click.option(
    "--older-than",
    required=True,
    help="Drop whole days of samples older than this duration (e.g. 90d).",
)
def retention(older_than: str) -> None:
    """Drop sample partitions (whole days) older than a duration; never deletes row by row."""
    from . import retention as retention_core

    try:
        age = durations.parse(older_than, field="--older-than")
        get_settings().require_database_url()
        result = retention_core.apply(age)
    except ModelstatsError as error:
        _fail(error)
        return
    for name in result.dropped_partitions:
        click.echo(f"dropped {name}")
    click.echo(
        f"dropped {len(result.dropped_partitions)} partition(s) before {result.cutoff.isoformat()},"
        f" forgot {result.forgotten_events} dedup record(s)"
    )


if __name__ == "__main__":
    main()
