#!/usr/bin/env bash
# A local Kubernetes with Knative Serving and Eventing, the documented way: the kn quickstart
# plugin (github.com/knative-extensions/kn-plugin-quickstart) creates a minikube profile, then
# installs Serving with Kourier, and Eventing with the InMemoryChannel and the MT channel-based
# broker (which is what infra/knative/broker.yaml asks for).
#
# Needs: minikube, kubectl, kn and its quickstart plugin (`kn quickstart --help` must work). Use
# the plugin release that installs Knative 1.22/1.23, the versions of the vendored schemas in
# infra/crds. Quickstart pauses once and asks you to start, in another terminal:
#     minikube tunnel --profile knative
# which must keep running while you use the cluster (it gives Kourier its address).
#
# Environment: MINIKUBE_PROFILE (default knative), KUBERNETES_VERSION (default below; the
# offline checks in src/modelstats/devtools/checks.py validate core objects against the same
# minor version), MINIKUBE_CPUS / MINIKUBE_MEMORY (applied only when minikube has no setting).
set -euo pipefail

PROFILE="${MINIKUBE_PROFILE:-knative}"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.34.0}"

for tool in minikube kubectl kn; do
  command -v "$tool" >/dev/null || { echo "minikube.sh: $tool not found (infra/README.md: Deploy to minikube)" >&2; exit 1; }
done
if ! kn quickstart --help >/dev/null 2>&1; then
  echo "minikube.sh: the kn quickstart plugin is missing (github.com/knative-extensions/kn-plugin-quickstart)" >&2
  exit 1
fi

if minikube status --profile "$PROFILE" >/dev/null 2>&1; then
  echo "minikube profile $PROFILE is already running; skipping quickstart" >&2
else
  # Quickstart's default (3 CPUs, 3 GB) is tight for PostgreSQL plus five functions; quickstart
  # takes minikube's own settings when there are any, so only fill in missing ones.
  minikube config get cpus >/dev/null 2>&1 || minikube config set cpus "${MINIKUBE_CPUS:-4}"
  minikube config get memory >/dev/null 2>&1 || minikube config set memory "${MINIKUBE_MEMORY:-6144}"
  kn quickstart minikube --name "$PROFILE" --kubernetes-version "$KUBERNETES_VERSION"
fi

kubectl config use-context "$PROFILE"
for namespace in knative-serving knative-eventing; do
  kubectl wait deployment --all --for=condition=Available --namespace "$namespace" --timeout=600s
done
echo "Knative is ready on minikube profile $PROFILE. Next: make images deploy" >&2
