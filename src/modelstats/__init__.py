"""modelstats: metrics, stats and alerts for AI models, as Knative functions over PostgreSQL."""

__version__ = "0.1.0"
