"""What every `modelstats` command shares: the group, failing with a message, where the
checkout is, the data directory, and which database a command works on.

Paths that default to files of the project (manifests, CRDs, the data directory) are found
from this package's location in the source checkout, never from the current directory, so
every command works from anywhere. Commands that need the database take DATABASE_URL, else
the database of the `modelstats run` whose `--data-dir` they are given (default: the
checkout's `.modelstats`), as `replay` always did.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from modelstats.core import settings
from modelstats.core.errors import ConfigError

Command = TypeVar("Command", bound=Callable[..., Any])


@click.group()
@click.version_option(package_name="modelstats")
def main() -> None:
    """modelstats: metrics, stats and alerts for AI models."""


def fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


def checkout() -> Path | None:
    """The source checkout this package runs from (`src/modelstats/cli/` three levels down), or
    None when it is installed elsewhere."""
    root = Path(__file__).resolve().parents[3]
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


def resolve_data_dir(given: str | None) -> Path:
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
    (None when neither). Given to the code under the command through this process's settings."""
    current = settings.get_settings()
    if current.database_url:
        return current.database_url
    from modelstats.local.stack.state import StackState

    running = StackState.running(resolve_data_dir(data_dir))
    url = running.database_url if running else None
    if url:
        settings.use(replace(current, database_url=url))
    return url or None


def use_database(data_dir: str | None) -> str:
    """`find_database`, or an error that says what to set."""
    url = find_database(data_dir)
    if not url:
        raise ConfigError(
            f"no database: DATABASE_URL is not set and no `modelstats run` is running with"
            f" --data-dir {resolve_data_dir(data_dir)}. Start the stack (make run), pass the"
            " --data-dir of the one that runs, or set DATABASE_URL=postgresql://user@host/db"
        )
    return url
