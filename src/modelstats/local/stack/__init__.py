"""`modelstats run`: the embedded PostgreSQL, the functions as the manifests' containers run
them, and the broker in front of them, each a supervised process of its own; `stack.json` for
the commands that need a running stack."""
