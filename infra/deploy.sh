#!/usr/bin/env bash
# Deploys modelstats to the current kube context: minikube with Knative Serving and Eventing
# (`make minikube`), images built into minikube's Docker daemon (`make images`).
#
# kn creates every object it can express; kubectl does only what kn cannot
# (../shared SEMANTICS.md, "kn CLI"):
#   - core objects: the Namespace, PostgreSQL (Secret, Service, StatefulSet), the migration Job,
#     the alert-rules and monitors ConfigMaps (from infra/knative/rules/alert-rules.yaml and
#     infra/knative/monitors/monitors.yaml, as the kustomization's configMapGenerator makes them), the optional-settings Secrets and the NetworkPolicy that
#     lets only Knative's data plane call the functions;
#   - etl-schedule's contentType, for which `kn source ping` has no flag (a patch).
# The demo (infra/overlays/demo) is not deployed: `kubectl apply -f infra/overlays/demo/demo.yaml`
# adds it.
# infra/knative/ describes the same objects (the local stack reads those files), and
# `kubectl apply -k infra/knative` alone creates them too;
# tests/infra/test_infra.py runs this script against recording stand-ins for kn and kubectl and
# checks that both describe the same objects.
#
# Environment: IMAGE_TAG (default latest; use a new tag to roll out a rebuilt image, since an
# unchanged spec makes no new revision), and optionally SLACK_WEBHOOK_URL, ALERT_WEBHOOK_URL,
# STATS_API_TOKEN.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFESTS="$ROOT/infra/knative"
NAMESPACE=modelstats
IMAGE_TAG="${IMAGE_TAG:-latest}"
# The ETL job of every tick, as in infra/knative/pingsource.yaml: profile logged inference.
ETL_JOB='{"source": "inference"}'

log() { printf '==> %s\n' "$*" >&2; }

# dev.local/: Knative does not try to resolve these tags to digests (the images are in
# minikube's Docker daemon, not in a registry); IfNotPresent: never pull them.
image() { printf 'dev.local/modelstats-%s:%s' "$1" "$IMAGE_TAG"; }

for tool in kn kubectl; do
  command -v "$tool" >/dev/null || { echo "deploy.sh: $tool not found (infra/README.md: Deploy to minikube)" >&2; exit 1; }
done
if ! kubectl get crd services.serving.knative.dev brokers.eventing.knative.dev >/dev/null 2>&1; then
  echo "deploy.sh: Knative Serving/Eventing not installed in this cluster: run 'make minikube'" >&2
  exit 1
fi

# kn has `apply` for services only. For eventing objects: update when present, else create.
# $1 is the kn noun ("trigger", "source ping"); it is split into words on purpose.
upsert() {
  local noun=$1 name=$2
  shift 2
  # shellcheck disable=SC2086
  if kn $noun describe "$name" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    kn $noun update "$name" --namespace "$NAMESPACE" "$@"
  else
    kn $noun create "$name" --namespace "$NAMESPACE" "$@"
  fi
}

# Secrets whose keys are all optional. The manifests mark them `optional: true`; kn cannot, so
# the Secret must exist. Set the keys found in the environment; create it empty otherwise, and
# never wipe keys set by an earlier deploy.
optional_secret() {
  local name=$1 var
  shift
  local literals=()
  for var in "$@"; do
    if [[ -n "${!var:-}" ]]; then
      literals+=("--from-literal=$var=${!var}")
    fi
  done
  if ((${#literals[@]})); then
    kubectl create secret generic "$name" --namespace "$NAMESPACE" "${literals[@]}" \
      --dry-run=client -o yaml | kubectl apply -f -
  elif ! kubectl get secret "$name" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    kubectl create secret generic "$name" --namespace "$NAMESPACE"
  fi
}

# One function as a Knative Service. THREADS, DB_POOL_SIZE and the concurrency limit are the
# same number by construction.
#   function_service NAME FUNCTION TARGET THREADS MIN_SCALE MAX_SCALE SCALE_TARGET [kn flags...]
function_service() {
  local name=$1 function=$2 target=$3 threads=$4 min=$5 max=$6 soft=$7
  shift 7
  log "service $name"
  kn service apply "$name" --namespace "$NAMESPACE" \
    --image "$(image "$function")" --pull-policy IfNotPresent \
    --cmd functions-framework \
    --arg=--source --arg="functions/$function/main.py" --arg=--target --arg="$target" \
    --port 8080 \
    --env-value-from DATABASE_URL=secret:modelstats-db:DATABASE_URL \
    --env WORKERS=1 --env THREADS="$threads" --env DB_POOL_SIZE="$threads" \
    --concurrency-limit "$threads" \
    --scale-min "$min" --scale-max "$max" --scale-target "$soft" \
    --probe-readiness http:::/healthz --probe-readiness-opts TimeoutSeconds=2,FailureThreshold=3 \
    --request cpu=100m,memory=128Mi --limit memory=512Mi \
    --security-context strict \
    "$@"
}

log "namespace and PostgreSQL"
kubectl apply -f "$MANIFESTS/namespace.yaml" -f "$MANIFESTS/postgres.yaml"

log "network policy (before the functions, so their pods start isolated)"
kubectl apply -f "$MANIFESTS/networkpolicy.yaml"

log "settings"
optional_secret modelstats-notify SLACK_WEBHOOK_URL ALERT_WEBHOOK_URL
optional_secret modelstats-stats-api STATS_API_TOKEN
kubectl create configmap alert-rules --namespace "$NAMESPACE" \
  --from-file=alert-rules.yaml="$MANIFESTS/rules/alert-rules.yaml" \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl create configmap monitors --namespace "$NAMESPACE" \
  --from-file=monitors.yaml="$MANIFESTS/monitors/monitors.yaml" \
  --dry-run=client -o yaml | kubectl apply -f -

log "waiting for PostgreSQL"
kubectl rollout status statefulset/postgres --namespace "$NAMESPACE" --timeout=300s

log "schema migration"
kubectl delete job modelstats-migrate --namespace "$NAMESPACE" --ignore-not-found
kubectl set image --local -f "$MANIFESTS/migrate-job.yaml" -o yaml "migrate=$(image ingest)" \
  | kubectl apply -f -
kubectl wait --for=condition=complete job/modelstats-migrate --namespace "$NAMESPACE" --timeout=900s

# deadletters first: the broker's dead-letter sink must resolve.
function_service deadletters ingest dead_letters 2 0 2 2 --cluster-local
function_service ingest ingest ingest 8 1 5 6 --cluster-local
function_service stats stats stats 8 0 4 6 --no-cluster-local \
  --env-from secret:modelstats-stats-api
# min-scale 1: undelivered notifications are retried by the running pod, so one stays up.
function_service alert alert alert 4 1 3 3 --cluster-local \
  --env ALERT_RULES_FILE=/etc/modelstats/rules/alert-rules.yaml \
  --env STATS_PUBLIC_URL=http://stats.modelstats.127.0.0.1.sslip.io \
  --mount /etc/modelstats/rules=cm:alert-rules \
  --env-from secret:modelstats-notify
# ETL_ROOT: the only directory jobs may read, an empty read-only placeholder volume here
# (services.yaml says why and how to mount real logs instead).
function_service etl etl etl 2 0 1 2 --cluster-local \
  --env ETL_ROOT=/srv/inference-logs \
  --env MONITORS_FILE=/etc/modelstats/monitors/monitors.yaml \
  --mount /srv/inference-logs=ed:inference-logs:readOnly=true \
  --mount /etc/modelstats/monitors=cm:monitors

log "broker"
BROKER_DELIVERY=(--retry 6 --backoff-policy exponential --backoff-delay PT0.5S --dl-sink ksvc:deadletters)
if kn broker describe default --namespace "$NAMESPACE" >/dev/null 2>&1; then
  # The class and the config of a broker are immutable: only its delivery can change.
  kn broker update default --namespace "$NAMESPACE" "${BROKER_DELIVERY[@]}"
else
  kn broker create default --namespace "$NAMESPACE" \
    --class MTChannelBasedBroker \
    --broker-config cm:config-br-default-channel:knative-eventing \
    "${BROKER_DELIVERY[@]}"
fi

log "triggers"
upsert trigger ingest-metric-reported --broker default \
  --filter type=modelstats.metric.reported --sink ksvc:ingest
upsert trigger alert-metric-stored --broker default \
  --filter type=modelstats.metric.stored --sink ksvc:alert
upsert trigger alert-ping --broker default \
  --filter type=dev.knative.sources.ping \
  --filter source=/apis/v1/namespaces/modelstats/pingsources/alert-schedule \
  --sink ksvc:alert
upsert trigger etl-ping --broker default \
  --filter type=dev.knative.sources.ping \
  --filter source=/apis/v1/namespaces/modelstats/pingsources/etl-schedule \
  --sink ksvc:etl
# Logged inference traffic (KServe's and Seldon's loggers, the reporter's records) and labels.
for logged in kserve-request:org.kubeflow.serving.inference.request \
  kserve-response:org.kubeflow.serving.inference.response \
  seldon-request:io.seldon.serving.inference.request \
  seldon-response:io.seldon.serving.inference.response \
  inference-logged:modelstats.inference.logged \
  label-reported:modelstats.label.reported; do
  upsert trigger "ingest-${logged%%:*}" --broker default --filter "type=${logged#*:}" \
    --sink ksvc:ingest
done

log "schedule"
upsert "source ping" etl-schedule --schedule "* * * * *" --data "$ETL_JOB" --sink broker:default
kubectl patch pingsources.sources.knative.dev etl-schedule --namespace "$NAMESPACE" \
  --type merge -p '{"spec": {"contentType": "application/json"}}'
# The alert function's clock: no data, so no contentType to patch.
upsert "source ping" alert-schedule --schedule "* * * * *" --sink broker:default

log "done; stats is at $(kn service describe stats --namespace "$NAMESPACE" -o url)"
