"""`modelstats etl run`: run an ETL job by hand and print what it reports."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from modelstats.cli.base import (
    data_dir_option,
    fail,
    find_database,
    main,
    resolve_data_dir,
    use_database,
)
from modelstats.core import settings
from modelstats.core.errors import ModelstatsError


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
    from modelstats.local.stack.state import StackState
    from modelstats.store import db

    try:
        current = settings.get_settings()
        if not current.etl_root:
            running = StackState.running(resolve_data_dir(data_dir))
            if running is not None and running.etl_root:
                settings.use(replace(current, etl_root=os.path.abspath(running.etl_root)))
        text = Path(job_text[1:]).read_text("utf-8") if job_text.startswith("@") else job_text
        job = jobs.parse(text)
        if isinstance(job, jobs.SyntheticJob):
            find_database(data_dir)  # not needed: random figures, no watermark
        else:
            use_database(data_dir)
        outcome = etl_core.run(job, commit=commit)
    except (OSError, ModelstatsError) as error:
        fail(error)
        return
    finally:
        db.close_pools()
    click.echo(json.dumps({"reports": outcome.reports}, indent=2))
    event_id = outcome.reply.event_id or "- (nothing new)"
    click.echo(f"source {outcome.source} id {event_id}", err=True)
