"""Drift references: the sample each model's scores are compared with, kept in PostgreSQL.

A job's `reference` is either "first" (the default) or a JSONL file:
- "first": the first closed window of a model and version holding at least MIN_SCORES scores
  becomes its reference (that window's own drift is therefore 0); windows before it, with
  fewer scores, report no drift.
- a file: the same JSON lines as the logs, of which only `model`, `version` and `score` are
  used (lines without them are ignored). A model and version is compared with the file's
  scores of that model and version, else with all the file's scores of that model; groups of
  fewer than MIN_SCORES scores are not used. The file's bins are computed once and kept with a
  hash of its content: edit the file and the next run recomputes them.
Switching a job from a file to "first" forgets the file's bins.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from datetime import datetime

from modelstats.core import timestamps
from modelstats.core.errors import BadInput
from modelstats.etl import confined, watermark
from modelstats.etl.psi import ReferenceBins, psi
from modelstats.etl.watermark import Connection

FIRST = "first"
MIN_SCORES = 10
_FILE = "file:"

Key = tuple[str, str]  # model, version ('' for a model-wide reference)


def _file_scores(path: str) -> tuple[str, dict[Key, list[float]]]:
    """The origin tag (path and content hash) and the scores per model/version and per model."""
    digest = hashlib.sha256()
    scores: dict[Key, list[float]] = defaultdict(list)
    try:
        with confined.open_file(path, "data.reference") as handle:
            for line in handle:
                digest.update(line)
                try:
                    raw = json.loads(line)
                except (ValueError, UnicodeDecodeError):
                    continue
                if not isinstance(raw, dict):
                    continue
                model, version, score = raw.get("model"), raw.get("version"), raw.get("score")
                if not isinstance(model, str) or not isinstance(version, str) or not model:
                    continue
                if isinstance(score, bool) or not isinstance(score, int | float):
                    continue
                if not math.isfinite(score):
                    continue
                scores[(model, version)].append(float(score))
                scores[(model, "")].append(float(score))
    except FileNotFoundError:
        raise BadInput("data.reference", f"{path}: no such file or directory") from None
    except OSError as error:
        raise BadInput("data.reference", f"cannot read {path}: {error.strerror}") from None
    return f"{_FILE}{path}#{digest.hexdigest()[:16]}", scores


class References:
    """The references of one source during one run (loaded on first use)."""

    def __init__(self, conn: Connection, source: str, setting: str):
        self._conn = conn
        self._source = source
        self._setting = setting
        self._known: dict[Key, ReferenceBins] | None = None

    def _load(self) -> dict[Key, ReferenceBins]:
        stored = watermark.references(self._conn, self._source)
        origins = {origin for origin, _ in stored.values()}
        if self._setting == FIRST:
            if any(origin.startswith(_FILE) for origin in origins):
                watermark.drop_references(self._conn, self._source)
                return {}
            return {key: reference for key, (_, reference) in stored.items()}
        origin, scores = _file_scores(self._setting)
        if origins == {origin}:
            return {key: reference for key, (_, reference) in stored.items()}
        watermark.drop_references(self._conn, self._source)
        known = {}
        for key, sample in scores.items():
            if len(sample) >= MIN_SCORES:
                known[key] = ReferenceBins.of(sample)
                watermark.add_reference(self._conn, self._source, key, origin, known[key])
        return known

    def drift(
        self, model: str, version: str, window: datetime, scores: list[float]
    ) -> float | None:
        """PSI of a window's scores against the reference; None when there is none yet."""
        if not scores:
            return None
        if self._known is None:
            self._known = self._load()
        reference = self._known.get((model, version)) or self._known.get((model, ""))
        if reference is None:
            if self._setting != FIRST or len(scores) < MIN_SCORES:
                return None
            reference = ReferenceBins.of(scores)
            origin = f"window:{timestamps.format(window)}"
            watermark.add_reference(self._conn, self._source, (model, version), origin, reference)
            self._known[(model, version)] = reference
        return psi(reference, scores)
