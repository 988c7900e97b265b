"""IdIndex: the pairing of requests with responses by row id, checked against a dict (what it
replaced), with duplicates, absent keys and forced hash collisions."""

from __future__ import annotations

import numpy as np
import pytest

from modelstats.etl.inference.frames import objects as texts
from modelstats.etl.inference.ids import IdIndex


def last_positions(keys: list[str | None], among: list[str | None]) -> list[int]:
    last = {value: i for i, value in enumerate(among)}  # later ones overwrite: the last wins
    return [last.get(key, -1) for key in keys]


def random_ids(rng: np.random.Generator, count: int, distinct: int) -> list[str | None]:
    return [f"event-{int(n)}:{int(n) % 7}" for n in rng.integers(0, distinct, count)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_key_finds_the_last_of_its_text(seed: int):
    rng = np.random.default_rng(seed)
    keys = random_ids(rng, 2_000, 1_500)  # some repeated, some absent from `among`
    among = random_ids(rng, 3_000, 1_500)
    index = IdIndex(texts(among))
    assert index.last(texts(keys)).tolist() == last_positions(keys, among)
    assert not index.distinct


def test_texts_whose_hashes_collide_are_told_apart():
    # A digest that collides all the time (the length) stands in for a rare 64-bit collision.
    keys = ["c", "a", "bb", "zz", "é", None, "q"]
    among = ["c", "a", "dd", "a", "bb", "x", "é", None, "cc"]
    index = IdIndex(texts(among), digest=lambda value: len(str(value)))
    assert index.last(texts(keys)).tolist() == last_positions(keys, among)
    assert last_positions(keys, among) == [0, 3, 4, -1, 6, 7, -1]


def test_distinct_says_whether_a_text_is_there_twice():
    assert IdIndex(texts(["a", "b", "c"])).distinct
    assert not IdIndex(texts(["a", "b", "a"])).distinct
    # Equal hashes of different texts are not known to be distinct: the caller checks.
    assert not IdIndex(texts(["a", "b"]), digest=lambda value: 0).distinct


def test_nothing_to_find_or_nothing_to_find_it_in():
    assert IdIndex(texts(["a"])).last(texts([])).tolist() == []
    assert IdIndex(texts([])).last(texts(["a", "b"])).tolist() == [-1, -1]
