"""Commands of the local Knative: the broker alone, the whole stack (`run`), replay."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelstats.core import durations
from modelstats.core.errors import ConfigError, ModelstatsError

if TYPE_CHECKING:
    from modelstats.local.broker.replay import Result as ReplayResult
from modelstats.cli.base import (
    DATA_DIR_VARIABLE,
    checkout,
    data_dir_option,
    fail,
    find_database,
    main,
    resolve_data_dir,
)

# Where `modelstats run` puts the ingress by default (--broker-port 8080, infra/knative's Broker).
DEFAULT_INGRESS = "http://127.0.0.1:8080/modelstats/default"


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
    from modelstats.local.broker import ingress, launch

    try:
        config = launch.BrokerConfig(
            manifests_dir=Path(manifests_dir),
            spool_path=Path(spool) if spool else resolve_data_dir(None) / "spool.jsonl",
            host=host,
            port=port,
            services=_services(services),
            ping_every=_seconds(ping_every, "--ping-every"),
            demo=not no_demo,
            max_in_flight=max_in_flight,
            admission_wait=admission_wait,
            max_body_bytes=max_body_bytes,
            spool_max_bytes=spool_max_bytes,
            timeouts=ingress.Timeouts(
                head=_seconds(header_timeout, "--header-timeout") or ingress.Timeouts.head,
                body=read_timeout,
                idle=max(
                    1, round(_seconds(idle_timeout, "--idle-timeout") or ingress.Timeouts.idle)
                ),
            ),
        )
        launch.run(config)
    except ModelstatsError as error:
        fail(error)


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
@click.option(
    "--no-demo",
    is_flag=True,
    help="Run without the demo (infra/overlays/demo: random figures every minute).",
)
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
    from modelstats.local.stack import lifecycle
    from modelstats.local.stack.supervisor import RestartPolicy

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
        # The checkout's demo goes with the checkout's manifests; other manifests hold their own.
        demo_dir = None if manifests_dir else root / "infra/overlays/demo"
    except ModelstatsError as error:
        fail(error)
        return
    config = lifecycle.StackConfig(
        broker_port=broker_port,
        stats_port=stats_port,
        ping_every=ping_every,
        data_dir=resolve_data_dir(data_dir),
        manifests_dir=manifests,
        etl_root=Path(etl_root) if etl_root else None,
        root=root,
        demo_dir=demo_dir,
        demo=not no_demo,
        restart=RestartPolicy(enabled=restart == "always"),
        db_port=db_port,
    )
    sys.exit(lifecycle.run(config))


@main.command()
@click.option("--broker", "broker_url", help="Broker ingress URL (default: the running stack's).")
@data_dir_option
@click.option(
    "--include-permanent",
    is_flag=True,
    help="Also send events that failed for good (a 4xx Knative does not retry).",
)
@click.option(
    "--wait",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to watch what becomes of the events sent (delivered or failed again); the"
    " watch ends as soon as the broker holds nothing in flight. 0: do not watch.",
)
def replay(
    broker_url: str | None, data_dir: str | None, include_permanent: bool, wait: float
) -> None:
    """Send stored dead letters and the local spool back to the broker ingress, then say what
    became of them."""
    import httpx

    from modelstats.local.broker import outcomes, spool
    from modelstats.local.broker import replay as replay_core
    from modelstats.local.stack.state import StackState

    directory = resolve_data_dir(data_dir)
    running = StackState.running(directory)
    url = broker_url or (running.broker if running else "") or DEFAULT_INGRESS
    database_url = find_database(data_dir)
    failed = 0
    with httpx.Client(timeout=30, trust_env=False) as client:
        run = replay_core.Replay(client, url, include_permanent=include_permanent)
        if database_url:
            try:
                result = replay_core.replay_dead_letters(run)
            except ModelstatsError as error:
                fail(error)
                return
            _report_replay("dead letters", result, "not accepted")
            failed += result.failed
        else:
            click.echo("dead letters: skipped (DATABASE_URL unset and no running stack)", err=True)
        spool_path = directory / spool.FILE_NAME
        result = replay_core.replay_spool(run, spool_path)
        _report_replay("spool", result, "kept")
        failed += result.failed
        try:
            outcome = outcomes.watch(
                client, url, run.sent, run.started, spool_path, bool(database_url), wait
            )
        except ModelstatsError as error:
            fail(error)
            return
    click.echo(f"outcome: {outcome.summary()}")
    for line in outcome.failure_lines():
        click.echo(f"  {line}")
    if outcome.failed_again:
        click.echo(
            "  each keeps its new failure (stats: GET /dead-letters); a failure Knative does"
            " not retry is left alone by later runs unless --include-permanent"
        )
    sys.exit(1 if failed or outcome.failed_again else 0)


def _report_replay(what: str, result: ReplayResult, kept_word: str) -> None:
    click.echo(f"{what}: {result.summary(kept_word)}")
    reason = result.skipped_reason()
    if reason:
        click.echo(f"  {reason}")
    for line in [*result.errors, *result.notes]:
        click.echo(f"  {line}", err=True)
