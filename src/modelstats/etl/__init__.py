"""The etl function's domain: jobs, the synthetic and JSONL sources, windows, drift, watermarks."""
