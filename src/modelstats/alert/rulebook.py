"""The rules file: YAML, each rule validated as its kind (rules.py), every problem named by
rule and field (`rule 'SlowInference' (rules[1]), field 'window': ...`); and this process's
rules, read from ALERT_RULES_FILE on first use in the worker (`current()`), never at import,
and again whenever the file changes. `modelstats check-rules FILE` runs the same check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from modelstats.alert.rules import AbsenceRule, AnyRule, Rule
from modelstats.core.configfile import WatchedFile
from modelstats.core.errors import ConfigError
from modelstats.core.settings import get_settings


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Each rule is validated as its kind (parse), so errors name its own fields.
    rules: list[dict[str, Any]]


def _describe(raw: object, location: tuple[int | str, ...]) -> str:
    """`rule 'Name' (rules[2]), field 'window'` from a pydantic error location."""
    if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
        index = location[1]
        name = None
        if isinstance(raw, dict) and isinstance(raw.get("rules"), list):
            items = raw["rules"]
            if index < len(items) and isinstance(items[index], dict):
                name = items[index].get("name")
        rule = f"rule {name!r} (rules[{index}])" if name else f"rule rules[{index}]"
        field = ".".join(str(part) for part in location[2:])
        return f"{rule}, field {field!r}" if field else rule
    return "field " + repr(".".join(str(part) for part in location) or "rules")


def _kind(raw: dict[str, Any]) -> type[AnyRule]:
    return AbsenceRule if "absent_for" in raw else Rule


def parse(text: str, origin: str = "rules") -> list[AnyRule]:
    """Validate a rules document; ConfigError lists every problem with its rule and field."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{origin}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping with a 'rules' list, e.g. 'rules: [...]'")
    found: list[AnyRule] = []
    problems: list[tuple[tuple[int | str, ...], str]] = []
    try:
        document = RulesFile.model_validate(raw)
    except ValidationError as error:
        problems = [(tuple(item["loc"]), item["msg"]) for item in error.errors()]
    else:
        for index, item in enumerate(document.rules):
            try:
                found.append(_kind(item).model_validate(item))
            except ValidationError as error:
                problems += [(("rules", index, *e["loc"]), e["msg"]) for e in error.errors()]
    if problems:
        described = [
            f"{_describe(raw, location)}: {message.removeprefix('Value error, ')}"
            for location, message in problems
        ]
        raise ConfigError(f"{origin}: " + "; ".join(described)) from None
    seen: dict[str, int] = {}
    for index, rule in enumerate(found):
        if rule.name in seen:
            raise ConfigError(
                f"{origin}: rule {rule.name!r} (rules[{index}]), field 'name':"
                f" the same name as rules[{seen[rule.name]}]; names must be unique"
            )
        seen[rule.name] = index
    return found


def load(path: str | os.PathLike[str]) -> list[AnyRule]:
    try:
        text = Path(path).read_text("utf-8")
    except OSError as error:
        raise ConfigError(f"alert rules file {os.fspath(path)!r}: {error.strerror}") from None
    return parse(text, origin=os.fspath(path))


# The rules of this process, reloaded when the file changes (a ConfigMap update). The first load
# must succeed: until then every request fails with the ConfigError (HTTP 500) and /healthz keeps
# the revision unready. A later edit that does not validate is logged, and the last good rules
# stay in force (core/configfile.py).
_cache: WatchedFile[list[AnyRule]] = WatchedFile(
    lambda: get_settings().alert_rules_file, load, "alert rules"
)


def current() -> list[AnyRule]:
    """The rules from ALERT_RULES_FILE (loaded on first use; ConfigError if malformed)."""
    return _cache.get()


def reset() -> None:
    """Forget the loaded rules (tests)."""
    _cache.clear()
