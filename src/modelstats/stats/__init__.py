"""The stats function's domain: aggregates, rollups, sketches, parameters, the access rule,
OpenAPI and the dashboard."""
