"""The Knative object model the local broker and the stack run, and `devtools` checks: the
manifests read into typed resources, Trigger filters, PingSource cron schedules and the retry
maths of a DeliverySpec. It imports neither the broker nor the stack (pyproject.toml)."""
