"""The event contract: every CloudEvent type and source that the functions produce or consume.

| type | produced by | consumed by |
|---|---|---|
| `modelstats.metric.reported` | model servers, etl | ingest |
| `modelstats.metric.stored` | ingest (its reply) | alert |
| `modelstats.alert.fired`, `.resolved` | alert (its reply) | anyone who subscribes |
| `dev.knative.sources.ping` | a PingSource | etl (its jobs), alert (its schedule) |
| `org.kubeflow.serving.inference.request`, `.response` | KServe's logger | ingest |
| `io.seldon.serving.inference.request`, `.response` | Seldon Core's logger | ingest |
| `modelstats.inference.logged` | the reporter, servers without a logger | ingest |
| `modelstats.label.reported` | whoever learns the truth (the reporter, the CLI) | ingest |

The Triggers in `infra/knative/triggers.yaml` filter on these same strings (a test checks it).
"""

from __future__ import annotations

METRIC_REPORTED = "modelstats.metric.reported"
METRIC_STORED = "modelstats.metric.stored"
ALERT_FIRED = "modelstats.alert.fired"
ALERT_RESOLVED = "modelstats.alert.resolved"
PING = "dev.knative.sources.ping"

# Inference traffic: the two halves of each call as the model servers' loggers send them (the
# same event id on both halves), and complete records from servers without such a logger.
KSERVE_REQUEST = "org.kubeflow.serving.inference.request"
KSERVE_RESPONSE = "org.kubeflow.serving.inference.response"
SELDON_REQUEST = "io.seldon.serving.inference.request"
SELDON_RESPONSE = "io.seldon.serving.inference.response"
INFERENCE_LOGGED = "modelstats.inference.logged"
INFERENCE_REQUESTS = (KSERVE_REQUEST, SELDON_REQUEST)
INFERENCE_RESPONSES = (KSERVE_RESPONSE, SELDON_RESPONSE)
INFERENCE_TYPES = (*INFERENCE_REQUESTS, *INFERENCE_RESPONSES, INFERENCE_LOGGED)
# The truth about logged rows, learnt later (core/labels.py).
LABEL_REPORTED = "modelstats.label.reported"

# Sources of the replies: ingest's and alert's are fixed; etl's name the job (see etl.runner).
INGEST_SOURCE = "/modelstats/ingest"
ALERT_SOURCE = "/modelstats/alert"
ETL_SOURCE_PREFIX = "/modelstats/etl/"


# The extensions a Knative broker adds: its loop guard and arrival stamp, and on a dead letter
# where and how the delivery failed (EV pkg/broker, pkg/channel/event_dispatcher.go).
BROKER_TTL = "knativebrokerttl"
ARRIVAL_TIME = "knativearrivaltime"
ERROR_DEST = "knativeerrordest"
ERROR_CODE = "knativeerrorcode"
ERROR_DATA = "knativeerrordata"
ERROR_EXTENSIONS = (ERROR_DEST, ERROR_CODE, ERROR_DATA)
BROKER_EXTENSIONS = (*ERROR_EXTENSIONS, BROKER_TTL, ARRIVAL_TIME)

# The annotation that picks a Broker's implementation, and the one the local broker follows.
BROKER_CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
MT_BROKER_CLASS = "MTChannelBasedBroker"

# What Knative retries (EV pkg/kncloudevents/retries.go): no answer at all, these statuses and
# every 5xx; any other non-2xx fails at once. The broker's deliveries, replay and the reporter
# all judge a status by this rule.
RETRIED_STATUSES = frozenset({404, 408, 409, 429})


def is_success(status: int) -> bool:
    return 200 <= status < 300


def is_retried(status: int | None) -> bool:
    """`None` is a network error (no response): retried, like every status Knative retries."""
    return status is None or status >= 500 or status in RETRIED_STATUSES


def ping_source(namespace: str, name: str) -> str:
    """The `source` of a PingSource's events, as Knative's mtping adapter sets it."""
    return f"/apis/v1/namespaces/{namespace}/pingsources/{name}"
