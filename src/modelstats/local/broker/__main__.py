"""`python -m modelstats.local.broker <BrokerConfig as JSON>`: the broker process the stack
starts (launch.py)."""

from __future__ import annotations

import sys

from modelstats.core.errors import ModelstatsError
from modelstats.local.broker.launch import BrokerConfig, run


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m modelstats.local.broker '<BrokerConfig as JSON>'", file=sys.stderr)
        return 2
    try:
        run(BrokerConfig.from_json(argv[0]))
    except ModelstatsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
