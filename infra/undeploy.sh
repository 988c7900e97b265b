#!/usr/bin/env bash
# Removes what infra/deploy.sh created, in the reverse order: the schedule first (nothing new
# comes in), then the routing, the functions, and the database.
# The PostgreSQL volume (PVC data-postgres-0) and the namespace are kept, so a redeploy finds its
# data again; `--purge` deletes the namespace and everything in it, the volume included.
set -euo pipefail

NAMESPACE=modelstats
PURGE=false
case "${1:-}" in
  "") ;;
  --purge) PURGE=true ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

command -v kubectl >/dev/null || { echo "undeploy.sh: kubectl not found" >&2; exit 1; }
command -v kn >/dev/null || { echo "undeploy.sh: kn not found" >&2; exit 1; }

# Deletes a Knative object if it exists; $1 is the kn noun, split into words on purpose.
remove() {
  local noun=$1 name=$2
  # shellcheck disable=SC2086
  if kn $noun describe "$name" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    kn $noun delete "$name" --namespace "$NAMESPACE"
  fi
}

# The demo's too, in case infra/overlays/demo/demo.yaml was applied.
for ping in demo-schedule demo-traffic demo-labels alert-schedule etl-schedule; do
  remove "source ping" "$ping"
done
for trigger in etl-demo-ping etl-demo-traffic etl-demo-labels etl-ping alert-ping alert-metric-stored ingest-metric-reported \
  ingest-kserve-request ingest-kserve-response ingest-seldon-request ingest-seldon-response \
  ingest-inference-logged ingest-label-reported; do
  remove trigger "$trigger"
done
remove broker default
for service in etl alert stats ingest deadletters; do
  remove service "$service"
done

kubectl delete --namespace "$NAMESPACE" --ignore-not-found \
  job/modelstats-migrate configmap/alert-rules configmap/monitors \
  secret/modelstats-notify secret/modelstats-stats-api \
  statefulset/postgres service/postgres secret/modelstats-db \
  networkpolicy/functions-from-knative

if [[ "$PURGE" == true ]]; then
  kubectl delete namespace "$NAMESPACE" --ignore-not-found
else
  echo "kept namespace $NAMESPACE and its PostgreSQL volume; 'make undeploy ARGS=--purge' deletes them" >&2
fi
