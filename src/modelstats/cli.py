"""The `modelstats` command line. Each command is a thin shell over a core module.

Paths that default to files of the project (manifests, CRDs, the data directory) are found
from this package's location in the source checkout, never from the current directory, so
every command works from anywhere. Commands that need the database take DATABASE_URL, else
the database of the `modelstats run` whose `--data-dir` they are given (default: the
checkout's `.modelstats`), as `replay` always did.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from modelstats.core import durations, settings
from modelstats.core.errors import ConfigError, ModelstatsError
from modelstats.core.settings import get_settings

if TYPE_CHECKING:
    from modelstats.local.replay import Result as ReplayResult

Command = TypeVar("Command", bound=Callable[..., Any])


@click.group()
@click.version_option(package_name="modelstats")
def main() -> None:
    """modelstats: metrics, stats and alerts for AI models."""


def _fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


def checkout() -> Path | None:
    """The source checkout this package runs from (`src/modelstats/` two levels down), or
    None when it is installed elsewhere."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "infra" / "knative").is_dir() else None


def in_checkout(relative: str, option: str) -> Path:
    root = checkout()
    if root is None:
        raise ConfigError(
            f"{relative} is part of the source checkout, and modelstats is not running from"
            f" one: pass {option}"
        )
    return root / relative


def default_data_dir() -> Path:
    # Without a checkout there is nothing for `modelstats run` to run: any place will do.
    return (checkout() or Path.cwd()) / ".modelstats"


def _data_dir(given: str | None) -> Path:
    return Path(given) if given else default_data_dir()


DATA_DIR_VARIABLE = "MODELSTATS_DATA_DIR"


def data_dir_option(command: Command) -> Command:
    return click.option(
        "--data-dir",
        envvar=DATA_DIR_VARIABLE,
        type=click.Path(file_okay=False),
        help="The data directory of a running `modelstats run`, whose database (and broker) is"
        f" used when DATABASE_URL is unset. Default: ${DATA_DIR_VARIABLE}, else .modelstats in"
        " the checkout.",
    )(command)


def find_database(data_dir: str | None) -> str | None:
    """The database a command works on: DATABASE_URL, else the running stack's in `data_dir`
    (None when neither). Put into the environment, where the code under the commands reads it."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        from modelstats.local import state

        url = state.running_state(_data_dir(data_dir)).get("database_url")
    if url:
        os.environ["DATABASE_URL"] = url
        settings.reset_settings()
    return url or None


def use_database(data_dir: str | None) -> str:
    """`find_database`, or an error that says what to set."""
    url = find_database(data_dir)
    if not url:
        raise ConfigError(
            f"no database: DATABASE_URL is not set and no `modelstats run` is running with"
            f" --data-dir {_data_dir(data_dir)}. Start the stack (make run), pass the --data-dir"
            " of the one that runs, or set DATABASE_URL=postgresql://user@host/db"
        )
    return url


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
@data_dir_option
def retention(older_than: str, data_dir: str | None) -> None:
    """Drop sample partitions (whole days) older than a duration; never deletes row by row."""
    from modelstats.store import retention as retention_core

    try:
        age = durations.parse(older_than, field="--older-than")
        use_database(data_dir)
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
    type=click.Path(dir_okay=False),
    help="Where events refused even by the dead-letter sink are appended"
    " (default: .modelstats/spool.jsonl in the checkout).",
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
@click.option(
    "--read-timeout",
    default=30.0,
    show_default=True,
    help="Seconds a sender has to deliver an event's body before the ingress answers 408.",
)
@click.option("--no-demo", is_flag=True, help="Leave out the PingSources of the synthetic job.")
@click.option(
    "--spool-max-bytes",
    type=int,
    help="The spool refuses events past this size (default: SPOOL_MAX_BYTES, 1 GiB).",
)
@click.option(
    "--header-timeout",
    default="10s",
    show_default=True,
    help="A request head must arrive within this (also from a connection's opening).",
)
@click.option(
    "--idle-timeout",
    default="5s",
    show_default=True,
    help="A keep-alive connection idle for this long is closed.",
)
def broker(
    manifests_dir: str,
    port: int,
    host: str,
    services: tuple[str, ...],
    ping_every: str | None,
    spool: str | None,
    max_in_flight: int,
    admission_wait: float,
    max_body_bytes: int | None,
    read_timeout: float,
    no_demo: bool,
    spool_max_bytes: int | None,
    header_timeout: str,
    idle_timeout: str,
) -> None:
    """Run the local Knative-style broker over a directory of manifests."""
    from modelstats.core import logs
    from modelstats.local import broker as broker_core
    from modelstats.local import demo, ingress, manifests

    logs.configure("broker")
    settings = get_settings()
    try:
        loaded = manifests.load(manifests_dir)
        timeouts = ingress.Timeouts(
            head=_seconds(header_timeout, "--header-timeout") or ingress.Timeouts.head,
            body=read_timeout,
            idle=max(1, round(_seconds(idle_timeout, "--idle-timeout") or ingress.Timeouts.idle)),
        )
        local = broker_core.build(
            demo.without_demo(loaded) if no_demo else loaded,
            port=port,
            host=host,
            services=_services(services),
            spool_path=Path(spool) if spool else _data_dir(None) / "spool.jsonl",
            ping_every=_seconds(ping_every, "--ping-every"),
            max_in_flight=max_in_flight,
            admission_wait=admission_wait,
            spool_max_bytes=spool_max_bytes or settings.spool_max_bytes,
        )
    except ModelstatsError as error:
        _fail(error)
        return
    lines = []
    for (namespace, name), route in local.routing.brokers.items():
        lines.append(f"broker {namespace}/{name}: http://{host}:{port}/{namespace}/{name}")
        lines += [f"  trigger {sub.name} -> {sub.url}" for sub in route.subscriptions]
    _announce(lines)
    ingress.serve(local, host, port, max_body_bytes or settings.max_body_bytes, timeouts)


def _announce(lines: list[str]) -> None:
    """What a command is about to serve: plain lines, or one log record when logs are JSON
    (a log pipeline wants nothing but JSON objects)."""
    if get_settings().log_format.strip().lower() == "json":
        import logging

        logging.getLogger("modelstats.broker").info("%s", "; ".join(line.strip() for line in lines))
        return
    for line in lines:
        click.echo(line, err=True)


@main.command()
@click.option("--broker-port", default=8080, show_default=True)
@click.option("--stats-port", default=8081, show_default=True)
@click.option("--ping-every", help="Fire the PingSources at this interval instead of their cron.")
@click.option(
    "--data-dir",
    envvar=DATA_DIR_VARIABLE,
    type=click.Path(file_okay=False),
    help=f"Database, spool, stack.json (default: ${DATA_DIR_VARIABLE}, else .modelstats in the"
    " checkout).",
)
@click.option(
    "--manifests",
    "manifests_dir",
    type=click.Path(file_okay=False),
    help="The Knative manifests to run (default: infra/knative in the checkout).",
)
@click.option(
    "--etl-root",
    envvar="ETL_ROOT",
    type=click.Path(file_okay=False),
    help="The only directory ETL jobs may read (created). Default: <data-dir>/etl.",
)
@click.option("--no-demo", is_flag=True, help="Run without the synthetic demo's PingSource.")
@click.option(
    "--restart",
    type=click.Choice(["always", "never"]),
    default="always",
    show_default=True,
    help="Restart a process that exits, with backoff (never: leave it down, for failure drills).",
)
@click.option(
    "--db-port",
    type=click.IntRange(1, 65535),
    help="The embedded PostgreSQL also listens on 127.0.0.1 at this port, for the read-only"
    " role (Grafana); the banner prints its connection string.",
)
def run(
    broker_port: int,
    stats_port: int,
    ping_every: str | None,
    data_dir: str | None,
    manifests_dir: str | None,
    etl_root: str | None,
    no_demo: bool,
    restart: str,
    db_port: int | None,
) -> None:
    """Run the whole pipeline locally: PostgreSQL, the functions and the broker."""
    from modelstats.local import stack
    from modelstats.local.supervisor import RestartPolicy

    try:
        _seconds(ping_every, "--ping-every")
        # The functions run from the checkout: their command names functions/<name>/main.py.
        root = checkout()
        if root is None:
            raise ConfigError(
                "modelstats run needs the source checkout (functions/, infra/knative):"
                " run it from a clone, e.g. make run"
            )
        manifests = Path(manifests_dir).resolve() if manifests_dir else root / "infra/knative"
    except ModelstatsError as error:
        _fail(error)
        return
    options = stack.Options(
        broker_port=broker_port,
        stats_port=stats_port,
        ping_every=ping_every,
        data_dir=_data_dir(data_dir),
        manifests_dir=manifests,
        etl_root=Path(etl_root) if etl_root else None,
        root=root,
        demo=not no_demo,
        restart=RestartPolicy(enabled=restart == "always"),
        db_port=db_port,
    )
    sys.exit(stack.run(options))


@main.command()
@click.option("--broker", "broker_url", help="Broker ingress URL (default: the running stack's).")
@data_dir_option
@click.option(
    "--include-permanent",
    is_flag=True,
    help="Also send events that failed for good (a 4xx Knative does not retry).",
)
def replay(broker_url: str | None, data_dir: str | None, include_permanent: bool) -> None:
    """Send stored dead letters and the local spool back to the broker ingress."""
    import httpx

    from modelstats.local import replay as replay_core
    from modelstats.local import spool, state

    directory = _data_dir(data_dir)
    running = state.running_state(directory)
    url = broker_url or running.get("broker") or "http://127.0.0.1:8080/modelstats/default"
    database_url = find_database(data_dir)
    failed = 0
    with httpx.Client(timeout=30, trust_env=False) as client:
        run = replay_core.Replay(client, url, include_permanent=include_permanent)
        if database_url:
            try:
                result = replay_core.replay_dead_letters(run)
            except ModelstatsError as error:
                _fail(error)
                return
            _report_replay("dead letters", result, "failed")
            failed += result.failed
        else:
            click.echo("dead letters: skipped (DATABASE_URL unset and no running stack)", err=True)
        result = replay_core.replay_spool(run, directory / spool.FILE_NAME)
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
        _fail(error)
        return
    directory = str(directory or manifests)
    count, problems = checks.check_directory(
        manifests, crd_dir, kubernetes_version or schemas.KUBERNETES_VERSION
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
@data_dir_option
def etl_run(job_text: str, commit: bool, data_dir: str | None) -> None:
    """Run a job once and print its reports as JSON ({"reports": [...]}).

    The event's source and id go to stderr. Nothing is sent to ingest. A JSONL job needs the
    database (its watermark) and reads under ETL_ROOT: both default to the running stack's.
    """
    import json

    from modelstats.etl import jobs
    from modelstats.etl import runner as etl_core
    from modelstats.local import state
    from modelstats.store import db

    try:
        if not os.environ.get("ETL_ROOT"):
            etl_root = state.running_state(_data_dir(data_dir)).get("etl_root")
            if etl_root:
                os.environ["ETL_ROOT"] = etl_root
                settings.reset_settings()
        text = Path(job_text[1:]).read_text("utf-8") if job_text.startswith("@") else job_text
        job = jobs.parse(text)
        if isinstance(job, jobs.SyntheticJob):
            find_database(data_dir)  # not needed: random figures, no watermark
        else:
            use_database(data_dir)
        outcome = etl_core.run(job, commit=commit)
    except (OSError, ModelstatsError) as error:
        _fail(error)
        return
    finally:
        db.close_pools()
    click.echo(json.dumps({"reports": outcome.reports}, indent=2))
    event_id = outcome.reply.event_id or "- (nothing new)"
    click.echo(f"source {outcome.source} id {event_id}", err=True)


@main.command("check-rules")
@click.argument("path", required=False, envvar="ALERT_RULES_FILE", type=click.Path(dir_okay=False))
def check_rules(path: str | None) -> None:
    """Validate an alert rules file (as the alert function does when it starts).

    PATH defaults to ALERT_RULES_FILE, else the checkout's infra/knative/rules/alert-rules.yaml.
    """
    from modelstats.alert import rules

    try:
        path = path or str(in_checkout("infra/knative/rules/alert-rules.yaml", "PATH"))
        loaded = rules.load(path)
    except ModelstatsError as error:
        _fail(error)
        return
    click.echo(f"{path}: {len(loaded)} rule(s) OK: {', '.join(r.name for r in loaded)}")


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
