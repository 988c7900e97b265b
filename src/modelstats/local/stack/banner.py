"""What `modelstats run` prints once everything is up: where each part listens, the database,
the events waiting in the spool, the demo, and a first event to try."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from modelstats.local.broker import spool

if TYPE_CHECKING:
    from modelstats.local.stack.lifecycle import Stack

# The banner's examples (and the README's) use a model the demo never writes.
EXAMPLE_MODEL, EXAMPLE_VERSION = "fraud-detector", "v3"


def shown_url(url: str) -> str:
    """A libpq URL with its password masked, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def render(stack: Stack) -> str:
    """The banner, from a stack that has started."""
    lines = [
        "",
        "modelstats is running. Ctrl-C stops everything.",
        f"  broker ingress  {stack.ingress}",
    ]
    if stack.stats_url:
        lines.append(f"  stats           {stack.stats_url}")
    for process in stack.processes:
        if process.name != "stats":
            lines.append(f"  {process.name:<15} {process.url}  (pid {process.pid})")
    if stack.postgres:
        where = f"{stack.database_url}  (embedded, in {stack.data_dir / 'pg'})"
    else:
        where = f"{shown_url(stack.database_url)}  (DATABASE_URL)"
    lines.append(f"  database        {where}")
    if stack.reader_url:
        lines.append(f"  read-only SQL   {stack.reader_url}  (Grafana: infra/grafana)")
    lines.append(f"  etl root        {stack.etl_root}  (the only place jsonl jobs may read)")
    lines += _spool_lines(stack)
    lines += _demo_lines(stack)
    lines += ["", "Try:"]
    lines.append(
        f"  curl -i {stack.ingress} -H 'ce-specversion: 1.0'"
        " -H 'ce-type: modelstats.metric.reported' -H 'ce-source: curl'"
        " -H \"ce-id: $(date +%s%N)\" -H 'content-type: application/json'"
        f' -d \'{{"model": "{EXAMPLE_MODEL}", "version": "{EXAMPLE_VERSION}",'
        ' "metrics": {"prediction_accuracy": 0.19}}\''
    )
    if stack.stats_url:
        lines.append(f"  curl {stack.stats_url}/stats/{EXAMPLE_MODEL}/{EXAMPLE_VERSION}")
    return "\n".join(lines) + "\n"


def _spool_lines(stack: Stack) -> list[str]:
    if not stack.spooled:
        return []
    command = Path(sys.executable).parent / "modelstats"
    return [
        f"  spool           {stack.spooled} event(s) wait in {stack.data_dir / spool.FILE_NAME}"
        " (held when a broker stopped, or refused by the dead-letter sink)",
        f"                  send them again: {command} replay --data-dir {stack.data_dir}",
    ]


def _demo_lines(stack: Stack) -> list[str]:
    if not stack.config.demo:
        return ["  demo            off (--no-demo)"]
    lines = []
    for ping in stack.demo:
        job = json.loads(ping.data or b"{}")
        every = f"every {stack.config.ping_every}" if stack.config.ping_every else None
        where = f" ({_shown_path(stack, Path(ping.source))})"
        if job.get("source") == "demo":
            what = (
                f"logs the traffic of {job.get('model') or 'demo-fraud'}"
                if job.get("part", "traffic") == "traffic"
                else f"sends the labels of {job.get('model') or 'demo-fraud'}, minutes late"
            )
            lines.append(
                f"  demo            PingSource {ping.name}{where} {what}"
                f" ({every or 'cron ' + ping.schedule.text})"
            )
            continue
        lines.append(
            f"  demo            PingSource {ping.name}{where} writes random"
            f" {', '.join(job.get('models') or ['GPT', 'Llama', 'Mistral'])}"
            f" {', '.join(job.get('versions') or ['v1'])}"
            f" ({every or 'cron ' + ping.schedule.text}), labelled demo=synthetic;"
            " turn it off with: make run ARGS=--no-demo"
        )
    return lines


def _shown_path(stack: Stack, path: Path) -> Path:
    """The file a manifest came from, from the checkout when it is in it."""
    return path.relative_to(stack.root) if path.is_relative_to(stack.root) else path
