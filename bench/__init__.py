"""Benchmarks run by `make bench`: each module measures one function, all print one table."""
