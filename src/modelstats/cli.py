"""The `modelstats` command line. Each command is a thin shell over a core module."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from modelstats.core import durations
from modelstats.core.errors import ModelstatsError
from modelstats.core.settings import get_settings

if TYPE_CHECKING:
    from modelstats.local.replay import Result as ReplayResult


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
    from modelstats.store import migrate as migrations

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
    from modelstats.store import retention as retention_core

    try:
        age = durations.parse(older_than, field="--older-than")
        get_settings().require_database_url()
        result = retention_core.apply(age)
    except ModelstatsError as error:
        _fail(error)
        return
    for name in result.dropped_partitions:
        click.echo(f"dropped {name}")
    forgotten = ", ".join(f"{count} {what}" for what, count in result.forgotten.items())
    click.echo(
        f"dropped {len(result.dropped_partitions)} partition(s) before {result.cutoff.isoformat()};"
        f" forgot {forgotten}"
    )


def _services(values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"expected name=http://host:port, got {value!r}")
        mapping[name] = url.rstrip("/")
    return mapping


def _seconds(value: str | None, option: str) -> float | None:
    return durations.parse(value, field=option).total_seconds() if value else None


@main.command()
@click.option("--manifests", "manifests_dir", required=True, type=click.Path(file_okay=False))
@click.option("--port", default=8080, show_default=True, help="Ingress port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--service",
    "services",
    multiple=True,
    help="Where a Knative Service runs locally: name=http://127.0.0.1:PORT (repeatable).",
)
@click.option("--ping-every", help="Fire every PingSource at this interval (e.g. 10s).")
@click.option(
    "--spool",
    default=".modelstats/spool.jsonl",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where events refused even by the dead-letter sink are appended.",
)
@click.option("--max-in-flight", default=1000, show_default=True, help="Backpressure limit.")
@click.option(
    "--admission-wait",
    default=2.0,
    show_default=True,
    help="Seconds an event waits for an in-flight slot before the ingress answers 503.",
)
@click.option(
    "--max-body-bytes",
    type=int,
    help="Larger events are refused with 413 (default: MAX_BODY_BYTES, ingest's limit, 8 MiB).",
)
def broker(
    manifests_dir: str,
    port: int,
    host: str,
    services: tuple[str, ...],
    ping_every: str | None,
    spool: str,
    max_in_flight: int,
    admission_wait: float,
    max_body_bytes: int | None,
) -> None:
    """Run the local Knative-style broker over a directory of manifests."""
    from pathlib import Path

    from modelstats.core import logs
    from modelstats.local import broker as broker_core
    from modelstats.local import ingress, manifests

    logs.configure()
    try:
        local = broker_core.build(
            manifests.load(manifests_dir),
            port=port,
            host=host,
            services=_services(services),
            spool_path=Path(spool),
            ping_every=_seconds(ping_every, "--ping-every"),
            max_in_flight=max_in_flight,
            admission_wait=admission_wait,
        )
    except ModelstatsError as error:
        _fail(error)
        return
    for (namespace, name), route in local.routing.brokers.items():
        click.echo(f"broker {namespace}/{name}: http://{host}:{port}/{namespace}/{name}", err=True)
        for sub in route.subscriptions:
            click.echo(f"  trigger {sub.name} -> {sub.url}", err=True)
    ingress.serve(local, host, port, max_body_bytes or get_settings().max_body_bytes)


@main.command()
@click.option("--broker-port", default=8080, show_default=True)
@click.option("--stats-port", default=8081, show_default=True)
@click.option("--ping-every", help="Fire the PingSources at this interval instead of their cron.")
@click.option("--data-dir", default=".modelstats", show_default=True, type=click.Path())
@click.option(
    "--manifests",
    "manifests_dir",
    default="infra/knative",
    show_default=True,
    type=click.Path(file_okay=False),
)
@click.option(
    "--etl-root",
    envvar="ETL_ROOT",
    type=click.Path(file_okay=False),
    help="The only directory ETL jobs may read (created). Default: <data-dir>/etl.",
)
def run(
    broker_port: int,
    stats_port: int,
    ping_every: str | None,
    data_dir: str,
    manifests_dir: str,
    etl_root: str | None,
) -> None:
    """Run the whole pipeline locally: PostgreSQL, the functions and the broker."""
    from pathlib import Path

    from modelstats.local import stack

    try:
        _seconds(ping_every, "--ping-every")
    except ModelstatsError as error:
        _fail(error)
        return
    options = stack.Options(
        broker_port=broker_port,
        stats_port=stats_port,
        ping_every=ping_every,
        data_dir=Path(data_dir),
        manifests_dir=Path(manifests_dir),
        etl_root=Path(etl_root) if etl_root else None,
    )
    sys.exit(stack.run(options))


@main.command()
@click.option("--broker", "broker_url", help="Broker ingress URL (default: the running stack's).")
@click.option("--data-dir", default=".modelstats", show_default=True, type=click.Path())
@click.option(
    "--include-permanent",
    is_flag=True,
    help="Also send events that failed for good (a 4xx Knative does not retry).",
)
def replay(broker_url: str | None, data_dir: str, include_permanent: bool) -> None:
    """Send stored dead letters and the local spool back to the broker ingress."""
    import os
    from pathlib import Path

    import httpx

    from modelstats.core import settings
    from modelstats.local import replay as replay_core
    from modelstats.local import spool, stack

    state = stack.read_state(Path(data_dir))
    url = broker_url or state.get("broker") or "http://127.0.0.1:8080/modelstats/default"
    database_url = os.environ.get("DATABASE_URL") or state.get("database_url")
    failed = 0
    with httpx.Client(timeout=30, trust_env=False) as client:
        run = replay_core.Replay(client, url, include_permanent=include_permanent)
        if database_url:
            os.environ["DATABASE_URL"] = database_url
            settings.reset_settings()
            try:
                result = replay_core.replay_dead_letters(run)
            except ModelstatsError as error:
                _fail(error)
                return
            _report_replay("dead letters", result, "failed")
            failed += result.failed
        else:
            click.echo("dead letters: skipped (DATABASE_URL unset and no running stack)", err=True)
        result = replay_core.replay_spool(run, Path(data_dir) / spool.FILE_NAME)
        _report_replay("spool", result, "kept")
        failed += result.failed
    sys.exit(1 if failed else 0)


def _report_replay(what: str, result: ReplayResult, kept_word: str) -> None:
    click.echo(f"{what}: {result.summary(kept_word)}")
    reason = result.skipped_reason()
    if reason:
        click.echo(f"  {reason}")
    for line in [*result.errors, *result.notes]:
        click.echo(f"  {line}", err=True)


@main.command("check-manifests")
@click.argument("directory", default="infra/knative", type=click.Path(exists=True))
@click.option("--crds", default="infra/crds", show_default=True, type=click.Path(file_okay=False))
@click.option("--kubernetes-version", default=None, help="Core kinds' schema version (e.g. 1.34).")
def check_manifests(directory: str, crds: str, kubernetes_version: str | None) -> None:
    """Validate Knative and Kubernetes manifests offline: CRD schemas, webhook rules, core kinds.

    DIRECTORY holds the manifests (every *.yaml in it), or is one (multi-document) YAML file.
    """
    from pathlib import Path

    from modelstats.devtools import checks, schemas

    count, problems = checks.check_directory(
        Path(directory), Path(crds), kubernetes_version or schemas.KUBERNETES_VERSION
    )
    for problem in sorted(problems):
        click.echo(str(problem))
    click.echo(f"{count} document(s) in {directory}: {len(problems)} problem(s)", err=True)
    sys.exit(1 if problems else 0)


@main.group()
def etl() -> None:
    """Run ETL jobs by hand (the etl function runs them on each PingSource tick)."""


@etl.command("run")
@click.option("--job", "job_text", required=True, help="The job as JSON, or @FILE holding it.")
@click.option(
    "--commit",
    is_flag=True,
    help="Save a JSONL job's watermark (its records then count as reported). Default: dry run.",
)
def etl_run(job_text: str, commit: bool) -> None:
    """Run a job once and print its reports as JSON ({"reports": [...]}).

    The event's source and id go to stderr. Nothing is sent to ingest.
    """
    import json
    from pathlib import Path

    from modelstats.etl import jobs
    from modelstats.etl import runner as etl_core
    from modelstats.store import db

    try:
        text = Path(job_text[1:]).read_text("utf-8") if job_text.startswith("@") else job_text
        outcome = etl_core.run(jobs.parse(text), commit=commit)
    except (OSError, ModelstatsError) as error:
        _fail(error)
        return
    finally:
        db.close_pools()
    click.echo(json.dumps({"reports": outcome.reports}, indent=2))
    event_id = outcome.reply.event_id or "- (nothing new)"
    click.echo(f"source {outcome.source} id {event_id}", err=True)


@main.command("check-rules")
@click.argument("path", type=click.Path(dir_okay=False))
def check_rules(path: str) -> None:
    """Validate an alert rules file (as the alert function does when it starts)."""
    from modelstats.alert import rules

    try:
        loaded = rules.load(path)
    except ModelstatsError as error:
        _fail(error)
        return
    click.echo(f"{path}: {len(loaded)} rule(s) OK: {', '.join(r.name for r in loaded)}")


@main.command()
@click.option("--force", is_flag=True, help="Also try notifications still waiting to be retried.")
def notify(force: bool) -> None:
    """Send the alert notifications that are due (each tried once); report what is left."""
    from modelstats.alert import outbox

    try:
        result = outbox.flush(force=force)
    except ModelstatsError as error:
        _fail(error)
        return
    click.echo(f"delivered {result.delivered}, failed {result.failed}")
    for notifier, count, next_attempt, attempts in result.waiting:
        click.echo(
            f"waiting: {count} for {notifier}, next attempt {next_attempt.isoformat()},"
            f" up to {attempts} attempt(s) so far"
        )
    if result.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
