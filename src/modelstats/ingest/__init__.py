"""The ingest function's domain: validated reports stored once per event, with group commit."""
