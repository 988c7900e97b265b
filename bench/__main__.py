"""`make bench`: run the benchmarks (`python -m bench [--quick] [--only NAME ...]`), one table."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from .common import Context, Row, print_table

# Each module exposes run(ctx) -> list[Row].
# `reference` runs first: every throughput row of the run prints its ratio to it.
BENCHES = [
    "reference",
    "broker",
    "ingest",
    "etl",
    "alert",
    "stats",
    "reporter",
    "inference",
    "drift",
    "labels",
    "images",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller data sets, shorter runs")
    parser.add_argument("--only", nargs="*", choices=BENCHES, help="run only these benchmarks")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    failed = False
    selected = args.only or BENCHES
    for name in [b for b in BENCHES if b in selected or b == "reference"]:
        ctx = Context(quick=args.quick)
        try:
            ctx.open()
            module = importlib.import_module(f"bench.{name}")
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows.extend(module.run(ctx))
        except Exception:
            failed = True
            traceback.print_exc()
            rows.append(Row(name, "FAILED", 0, "", "see the traceback above"))
        finally:
            ctx.close()
    print_table(rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
