"""Fixtures of the local tests that start whole stacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stacks import Stack, kill_everything, start_stack, stop_stack


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    started: list[Stack] = []

    def factory(**kwargs: Any) -> Stack:
        stack = start_stack(tmp_path / f"s{len(started)}", **kwargs)
        started.append(stack)
        return stack

    yield factory
    for stack in started:
        if stack.popen.poll() is None:
            stop_stack(stack)
        kill_everything(stack)
