"""The stats function's domain: aggregates, rollups, sketches, parameters, routes, OpenAPI and
the dashboard."""
