"""The `modelstats` command line: the composition root. Each command is a thin shell over a core
module; the commands are grouped by what they work on (base.py holds what they share).

Paths that default to files of the project (manifests, CRDs, the data directory) are found
from this package's location in the source checkout, never from the current directory, so
every command works from anywhere. Commands that need the database take DATABASE_URL, else
the database of the `modelstats run` whose `--data-dir` they are given (default: the
checkout's `.modelstats`).
"""

from modelstats.cli import checks, etl, inference, local, store
from modelstats.cli.base import main

__all__ = ["checks", "etl", "inference", "local", "main", "store"]
