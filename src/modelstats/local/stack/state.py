"""`<data-dir>/stack.json`: what a running `modelstats run` is (URLs, pids, database URL), for
the commands that need its broker or database and for the tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "stack.json"


def read_state(data_dir: Path) -> dict[str, Any]:
    path = data_dir / STATE_FILE
    try:
        state = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def running_state(data_dir: Path) -> dict[str, Any]:
    """The state of the stack running in `data_dir`; empty when none is (a stack killed with
    SIGKILL leaves its stack.json behind: its pid is gone)."""
    state = read_state(data_dir)
    pid = state.get("pid")
    if not isinstance(pid, int):
        return {}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return {}
    except PermissionError:
        pass  # alive, another user's
    return state
