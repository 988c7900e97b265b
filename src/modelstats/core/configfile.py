"""Configuration files the functions read on first use and again whenever they change.

A file mounted from a ConfigMap changes under a running pod (the kubelet swaps it), so each
use checks the file's identity (path, modification time, size) and reloads it when it moved.
The first load must succeed: until then every use raises the file's ConfigError (the function
answers 500 and its /healthz keeps the revision unready). A later edit that does not validate
is logged and the last good content stays in force.

YAML errors name the line: `line_of(text, path)` finds where a value of the document sits, so
a validation error on `monitors[2].window` can say `line 14`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import yaml

from modelstats.core.errors import ConfigError

log = logging.getLogger("modelstats.config")

Content = TypeVar("Content")


class WatchedFile(Generic[Content]):
    def __init__(self, path: Callable[[], str], load: Callable[[str], Content], what: str):
        self._path = path
        self._load = load
        self._what = what
        self._lock = threading.Lock()
        self._key: tuple[str, int, int] | None = None
        self._good: tuple[str, Content] | None = None
        self._error: ConfigError | None = None

    def get(self) -> Content:
        path = self._path()
        try:
            stat = os.stat(path)
            key = (path, stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = (path, -1, -1)
        with self._lock:
            if key != self._key:
                self._key = key
                try:
                    self._good, self._error = (path, self._load(path)), None
                except ConfigError as error:
                    if self._good is not None and self._good[0] == path:
                        log.error("keeping the previous %s: %s", self._what, error)
                    else:
                        self._good, self._error = None, error
            if self._good is None:
                assert self._error is not None
                raise self._error
            return self._good[1]

    def clear(self) -> None:
        with self._lock:
            self._key = self._good = self._error = None


def read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as error:
        raise ConfigError(f"{what} {path!r}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path!r}: not UTF-8 text") from None


def line_of(text: str, path: Sequence[str | int]) -> int | None:
    """The 1-based line where the node at `path` (mapping keys, list indexes) starts, or of
    the deepest part of it that exists; None when the text is not YAML."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
