"""How a broker process starts: `BrokerConfig`, everything it is started with, and `run`.

`modelstats broker` builds a config from its flags and runs it in its own process. The stack
builds one and starts `python -m modelstats.local.broker <config as JSON>` (`command()`): the
one class writes the line and reads it back, so the stack never spells the CLI's flag names (a
dependency on `cli` that no import contract could see).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelstats.core import logs
from modelstats.core.errors import ConfigError
from modelstats.core.settings import get_settings
from modelstats.local.broker import demo, dispatcher, ingress

log = logging.getLogger("modelstats.broker")


@dataclass(frozen=True)
class BrokerConfig:
    manifests_dir: Path
    # Where events refused even by the dead-letter sink are appended.
    spool_path: Path
    host: str = "127.0.0.1"
    port: int = 8080
    # Where each Knative Service of the manifests runs: name -> http://host:port.
    services: Mapping[str, str] = field(default_factory=dict)
    # Seconds: every PingSource fires at this interval instead of its cron schedule.
    ping_every: float | None = None
    # The demo's manifests (infra/overlays/demo), run beside manifests_dir while `demo` is on.
    demo_dir: Path | None = None
    # False: no demo: neither demo_dir nor any PingSource of the synthetic job (demo.py).
    demo: bool = True
    max_in_flight: int = 1000
    admission_wait: float = 2.0
    # None: the settings' MAX_BODY_BYTES and SPOOL_MAX_BYTES, read in the broker's process.
    max_body_bytes: int | None = None
    spool_max_bytes: int | None = None
    timeouts: ingress.Timeouts = field(default_factory=ingress.Timeouts)

    def to_json(self) -> str:
        document = dataclasses.asdict(self)
        document["manifests_dir"] = str(self.manifests_dir)
        document["spool_path"] = str(self.spool_path)
        document["demo_dir"] = str(self.demo_dir) if self.demo_dir else None
        document["services"] = dict(self.services)
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> BrokerConfig:
        try:
            document: dict[str, Any] = json.loads(text)
            return cls(
                **{
                    **document,
                    "manifests_dir": Path(document["manifests_dir"]),
                    "spool_path": Path(document["spool_path"]),
                    "demo_dir": Path(document["demo_dir"]) if document.get("demo_dir") else None,
                    "timeouts": ingress.Timeouts(**document.get("timeouts", {})),
                }
            )
        except (ValueError, TypeError, KeyError) as error:
            raise ConfigError(f"not a broker configuration: {error}") from None

    def command(self) -> list[str]:
        """The broker's own process, as the stack starts it."""
        return [sys.executable, "-m", "modelstats.local.broker", self.to_json()]


def build(config: BrokerConfig) -> dispatcher.LocalBroker:
    """The broker of the config's manifests (ConfigError for what it cannot honour)."""
    return dispatcher.build(
        demo.load(config.manifests_dir, config.demo_dir, config.demo),
        port=config.port,
        host=config.host,
        services=config.services,
        spool_path=config.spool_path,
        ping_every=config.ping_every,
        max_in_flight=config.max_in_flight,
        admission_wait=config.admission_wait,
        spool_max_bytes=config.spool_max_bytes or get_settings().spool_max_bytes,
    )


def run(config: BrokerConfig) -> None:
    """Serve until SIGINT/SIGTERM (ingress.py); ConfigError before serving when the manifests
    cannot be run."""
    logs.configure("broker")
    broker = build(config)
    lines = []
    for (namespace, name), route in broker.routing.brokers.items():
        lines.append(
            f"broker {namespace}/{name}: http://{config.host}:{config.port}/{namespace}/{name}"
        )
        lines += [f"  trigger {sub.name} -> {sub.url}" for sub in route.subscriptions]
    _announce(lines)
    max_body_bytes = config.max_body_bytes or get_settings().max_body_bytes
    ingress.serve(broker, config.host, config.port, max_body_bytes, config.timeouts)


def _announce(lines: list[str]) -> None:
    """What the broker is about to serve: plain lines on stderr, or one log record when logs
    are JSON (a log pipeline wants nothing but JSON objects)."""
    if get_settings().log_format.strip().lower() == "json":
        log.info("%s", "; ".join(line.strip() for line in lines))
        return
    for line in lines:
        print(line, file=sys.stderr, flush=True)
