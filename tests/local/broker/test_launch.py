"""The broker's typed entry point: what the stack writes on the command line is what the broker
process reads back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelstats.core.errors import ConfigError
from modelstats.local.broker.ingress import Timeouts
from modelstats.local.broker.launch import BrokerConfig


def test_a_config_survives_the_command_line() -> None:
    config = BrokerConfig(
        manifests_dir=Path("/x/manifests"),
        spool_path=Path("/x/spool.jsonl"),
        host="0.0.0.0",
        port=18080,
        services={"ingest": "http://127.0.0.1:9001", "alert": "http://127.0.0.1:9002"},
        ping_every=0.5,
        demo_dir=Path("/x/demo"),
        demo=False,
        max_in_flight=7,
        admission_wait=0.25,
        max_body_bytes=1000,
        spool_max_bytes=2000,
        timeouts=Timeouts(head=1.5, body=3.0, idle=2),
    )
    argv = config.command()
    assert argv[:3] == [sys.executable, "-m", "modelstats.local.broker"]
    assert BrokerConfig.from_json(argv[3]) == config


def test_defaults_survive_too() -> None:
    config = BrokerConfig(Path("m"), Path("s"))
    assert BrokerConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "text",
    ["not json", "{}", '{"manifests_dir": "m", "spool_path": "s", "colour": "red"}'],
)
def test_anything_else_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="not a broker configuration"):
        BrokerConfig.from_json(text)
