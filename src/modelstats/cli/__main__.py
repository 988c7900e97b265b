"""`python -m modelstats.cli`: the command line (the stack starts its broker this way)."""

from modelstats.cli import main

main()
