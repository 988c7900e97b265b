"""The inference job: logged traffic (ingest keeps it) turned into per-window profiles, drift
against a reference and accuracy once labels arrive, written as ordinary samples."""
