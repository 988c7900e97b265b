"""The local Knative, in three packages: `knative/` (the object model read from the manifests),
`broker/` (the runtime that routes and delivers events) and `stack/` (`modelstats run`: every
process of the pipeline). The stack starts the broker; the model imports neither (pyproject.toml
`[tool.importlinter]`)."""
