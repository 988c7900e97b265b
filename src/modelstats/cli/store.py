"""Commands over the database: migrate, retention, notify."""

from __future__ import annotations

import sys

import click

from modelstats.cli.base import data_dir_option, fail, main, use_database
from modelstats.core import durations
from modelstats.core.errors import ModelstatsError


@main.command()
@click.option(
    "--database-url", help="libpq URL (default: $DATABASE_URL, else the running stack's)."
)
@data_dir_option
def migrate(database_url: str | None, data_dir: str | None) -> None:
    """Apply pending schema migrations (idempotent; safe to run from several pods at once)."""
    from modelstats.store import migrate as migrations

    try:
        applied = migrations.migrate(database_url or use_database(data_dir))
    except ModelstatsError as error:
        fail(error)
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
@data_dir_option
def retention(older_than: str, data_dir: str | None) -> None:
    """Drop sample partitions (whole days) older than a duration; never deletes row by row."""
    from modelstats.store import retention as retention_core

    try:
        age = durations.parse(older_than, field="--older-than")
        use_database(data_dir)
        result = retention_core.apply(age)
    except ModelstatsError as error:
        fail(error)
        return
    for name in result.dropped_partitions:
        click.echo(f"dropped {name}")
    forgotten = ", ".join(f"{count} {what}" for what, count in result.forgotten.items())
    click.echo(
        f"dropped {len(result.dropped_partitions)} partition(s) before {result.cutoff.isoformat()};"
        f" forgot {forgotten}"
    )


@main.command()
@click.option("--force", is_flag=True, help="Also try notifications still waiting to be retried.")
@data_dir_option
def notify(force: bool, data_dir: str | None) -> None:
    """Send the alert notifications that are due (each tried once); report what is left."""
    from modelstats.alert import outbox

    try:
        use_database(data_dir)
        result = outbox.flush(force=force)
    except ModelstatsError as error:
        fail(error)
        return
    click.echo(f"delivered {result.delivered}, failed {result.failed}")
    for waiting in result.waiting:
        click.echo(
            f"waiting: {waiting.count} for {waiting.notifier},"
            f" next attempt {waiting.next_attempt_at.isoformat()},"
            f" up to {waiting.attempts} attempt(s) so far"
        )
    if result.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
