"""The local Knative: broker, manifests, filters, delivery, cron, spool, replay, the stack and
its processes."""
