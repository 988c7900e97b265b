"""Offline checks of the Knative manifests (dev-only dependencies)."""
