"""The local broker's runtime: the ingress, the routing compiled from the manifests, fan-out and
delivery with Knative's retries, replies, dead letters, the spool, PingSource ticks, counts,
and `modelstats replay`. It reads the Knative model (local/knative) and never imports the stack
(pyproject.toml): the stack starts it as a process through `launch.BrokerConfig`."""
