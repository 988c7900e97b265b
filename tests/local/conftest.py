"""Fixtures of the local tests that start whole stacks."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stacks import Stack, running_stack


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Start stacks in a test; each is stopped and cleared away after it, even when stopping
    another one failed."""
    numbers = itertools.count()
    with contextlib.ExitStack() as started:

        def factory(**kwargs: Any) -> Stack:
            data = tmp_path / f"s{next(numbers)}"
            return started.enter_context(running_stack(data, **kwargs))

        yield factory
