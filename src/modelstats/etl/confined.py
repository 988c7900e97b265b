"""The files an ETL job may read: regular files under ETL_ROOT, reached without following links.

Anyone who can post a ping to the broker chooses a job's `path` and `reference`, so:
- a path is first checked as text (normalised, relative ones taken from the root, under the
  root); one outside gets the same answer whatever exists there, and nothing outside is
  touched;
- it is then opened one component at a time from a descriptor of the root (`openat` with
  O_NOFOLLOW at every step): a symbolic link anywhere below the root is refused, never
  followed, and since there is no check apart from the open itself, a component swapped for a
  link between a listing and an open cannot redirect it;
- what is opened must be a regular file (or, for a job's path, a directory); O_NONBLOCK keeps a
  FIFO from blocking the open before it is refused;
- where /proc/self/fd exists (Linux), the opened descriptor's real path is checked under the
  root once more.

An unset ETL_ROOT lets jobs read nothing: a forgotten variable must not open the filesystem to
whoever can post to the broker. `ETL_ROOT=/` is the explicit way to allow every path (links are
still not followed).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from modelstats.core.errors import BadInput
from modelstats.core.settings import get_settings

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FINAL = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_PROC_FD = Path("/proc/self/fd")
SUFFIX = ".jsonl"


def root(field: str) -> str:
    """ETL_ROOT as configured (absolute); BadInput when it is unset."""
    configured = get_settings().etl_root
    if configured is None:
        raise BadInput(
            field,
            "ETL_ROOT is not set on the etl function, so jsonl jobs may read nothing:"
            " set it to the directory that holds the logs",
        )
    return configured


def _is_under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _relative(path: str, field: str) -> tuple[str, list[str]]:
    """The root as configured and the components of `path` below it, decided on the text
    alone. The root's own real path is accepted as a prefix too (/tmp -> /private/tmp)."""
    top = root(field)
    if "\x00" in path:
        raise BadInput(field, "must not contain NUL")
    normal = os.path.normpath(os.path.join(top, path))  # a relative path is under the root
    for prefix in (top, os.path.realpath(top)):
        if _is_under(normal, prefix):
            relative = os.path.relpath(normal, prefix)
            return top, [] if relative == "." else relative.split(os.sep)
    raise BadInput(field, f"must be under ETL_ROOT ({top})")


def check(path: str, field: str) -> str:
    """`path` normalised, if it names something under ETL_ROOT; nothing is opened."""
    top, parts = _relative(path, field)
    return os.path.join(top, *parts)


def _refusal(path: str, name: str, parent: int, error: OSError, field: str) -> BadInput:
    """A clear error for a failed step of the walk (everything here is under the root)."""
    if error.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        try:
            link = stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
        except OSError:
            link = False
        if link:
            return BadInput(field, f"{path}: symbolic links under ETL_ROOT are not followed")
        return BadInput(field, f"{path}: not a directory on the way")
    if error.errno == errno.ENOENT:
        return BadInput(field, f"{path}: no such file or directory")
    return BadInput(field, f"cannot read {path}: {error.strerror}")


def _verify_opened(descriptor: int, top: str, path: str, field: str) -> None:
    try:
        real = os.readlink(_PROC_FD / str(descriptor))
    except OSError:
        return  # no /proc (macOS): the walk alone is the guarantee
    if not _is_under(real.removesuffix(" (deleted)"), os.path.realpath(top)):
        raise BadInput(field, f"{path}: resolves outside ETL_ROOT")


def _open(path: str, field: str) -> tuple[int, os.stat_result]:
    """Walk from the root to `path`; the descriptor of what it names, and its status."""
    top, parts = _relative(path, field)
    try:
        current = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise BadInput(field, f"ETL_ROOT ({top}) cannot be opened: {error.strerror}") from None
    try:
        for index, name in enumerate(parts):
            flags = _FINAL if index == len(parts) - 1 else _DIRECTORY
            try:
                step = os.open(name, flags, dir_fd=current)
            except FileNotFoundError:
                raise
            except OSError as error:
                raise _refusal(path, name, current, error, field) from None
            os.close(current)
            current = step
        info = os.fstat(current)
        _verify_opened(current, top, path, field)
    except BaseException:
        os.close(current)
        raise
    return current, info


def open_file(path: str, field: str) -> BinaryIO:
    """A regular file under ETL_ROOT, opened for reading. FileNotFoundError when it is gone."""
    descriptor, info = _open(path, field)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise BadInput(field, f"{path}: not a regular file")
    return os.fdopen(descriptor, "rb")


def discover(path: str, field: str) -> list[Path]:
    """The file itself, or the regular `*.jsonl` files directly in a directory (sorted by name;
    links and anything else are left out)."""
    try:
        descriptor, info = _open(path, field)
    except FileNotFoundError:
        raise BadInput(field, f"{path}: no such file or directory") from None
    normal = check(path, field)
    try:
        if stat.S_ISREG(info.st_mode):
            return [Path(normal)]
        if not stat.S_ISDIR(info.st_mode):
            raise BadInput(field, f"{path}: not a regular file or directory")
        found = []
        for name in sorted(os.listdir(descriptor)):
            if not name.endswith(SUFFIX):
                continue
            try:
                entry = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while listing
            if stat.S_ISREG(entry.st_mode):
                found.append(Path(normal) / name)
        return found
    except OSError as error:
        raise BadInput(field, f"cannot read {path}: {error.strerror}") from None
    finally:
        os.close(descriptor)
