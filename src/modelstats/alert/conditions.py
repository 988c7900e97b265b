"""Comparisons: an operator and a threshold, as a rule's condition and its `when` conditions
write them (`op: "<"`, `threshold: 0.3`; `when: {label_coverage: ">= 0.5"}`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, cast

Op = Literal["<", "<=", ">", ">="]

OP_WORDS: dict[str, str] = {
    "<": "lower than",
    "<=": "lower than or equal to",
    ">": "higher than",
    ">=": "higher than or equal to",
}
_CONDITION = re.compile(r"^\s*(<=|>=|<|>)\s*(\S+)\s*$")


def compare(value: float, op: Op, threshold: float) -> bool:
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == ">":
        return value > threshold
    return value >= threshold


def format_number(value: float) -> str:
    """0.3 -> '0.3', 100.0 -> '100': how a threshold or value reads in a message."""
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


@dataclass(frozen=True)
class Condition:
    """`>= 0.5`: what a value must be."""

    op: Op
    threshold: float

    @classmethod
    def parse(cls, text: object) -> Condition:
        """ValueError saying what is wrong, for a pydantic validator to report."""
        if isinstance(text, Condition):
            return text
        match = _CONDITION.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f'expected an operator and a number, e.g. ">= 0.5", got {text!r}')
        try:
            threshold = float(match[2])
        except ValueError:
            raise ValueError(f"{match[2]!r} is not a number") from None
        if not math.isfinite(threshold):
            raise ValueError(f"{match[2]!r} is not a finite number")
        return cls(cast(Op, match[1]), threshold)

    def holds(self, value: float) -> bool:
        return compare(value, self.op, self.threshold)

    def __str__(self) -> str:
        return f"{self.op} {format_number(self.threshold)}"
