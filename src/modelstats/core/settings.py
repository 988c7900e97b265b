"""One settings object per process: read from the environment on first use (never at import),
or given explicitly with `use()` (the CLI, when a command finds its database; tests).

    settings.use(replace(get_settings(), database_url=url))
    settings.forget()    # the next get_settings() reads the environment again
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from modelstats.core.errors import ConfigError
from modelstats.core.holder import Holder


def _int(
    env: dict[str, str], name: str, default: int, minimum: int = 1, maximum: int | None = None
) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")
    return value


# The most MAX_ATTRIBUTE_BYTES may be: a (source, id) key of twice this fits an index row.
MAX_ATTRIBUTE_BYTES_LIMIT = 1300


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    # Pool size per process: equal to the worker threads (and Knative's containerConcurrency).
    pool_size: int = 8
    statement_timeout_ms: int = 10_000
    # How long a request waits for a pooled connection before answering 503.
    pool_timeout_s: int = 5
    max_body_bytes: int = 8 * 1024 * 1024
    max_reports: int = 10_000
    max_metrics: int = 100
    max_labels: int = 20
    max_name_length: int = 200
    # Logged inference: rows and features (columns) one event may carry.
    max_rows: int = 10_000
    max_features: int = 100
    # The inference job's configuration (etl/inference/monitors.py).
    monitors_file: str = "infra/knative/monitors/monitors.yaml"
    # Each CloudEvent attribute value (id, source, type, extensions...), in UTF-8 bytes, as
    # the functions judge it. Two of them key a row (source, id): together they must stay
    # under PostgreSQL's index row limit (about 2,700 bytes), hence the maximum.
    max_attribute_bytes: int = 1024
    # The local broker's spool refuses events past this size rather than fill the disk.
    spool_max_bytes: int = 1024**3
    # Bearer token of the stats API; unset leaves the API open.
    stats_api_token: str | None = None
    # Alerts: the rules file, notifiers, and the outbox's delivery and retry timing.
    alert_rules_file: str = "infra/knative/rules/alert-rules.yaml"
    slack_webhook_url: str | None = None
    alert_webhook_url: str | None = None
    stats_public_url: str = "http://127.0.0.1:8081"
    alert_retry_initial_ms: int = 1_000
    alert_retry_max_ms: int = 600_000
    alert_delivery_timeout_ms: int = 5_000
    alert_delivery_threads: int = 2
    alert_poll_interval_ms: int = 5_000
    # ETL: jsonl jobs may only read logs (and references) under this directory (absolute, as
    # given: a path under its real path is accepted too); unset, they read nothing.
    etl_root: str | None = None
    # Logs (core/logs.py): the least level written, and text or json lines.
    log_level: str = "INFO"
    log_format: str = "text"
    # The stats function's /metrics exports at most this many series' last values.
    metrics_max_series: int = 1000
    extra: dict[str, str] = field(default_factory=dict)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "DATABASE_URL is not set (a libpq URL, e.g. postgresql://user@host/db)"
            )
        return self.database_url


def from_environment(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        pool_size=_int(env, "DB_POOL_SIZE", _int(env, "THREADS", 8)),
        statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 10_000),
        pool_timeout_s=_int(env, "DB_POOL_TIMEOUT_S", 5),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 8 * 1024 * 1024),
        max_reports=_int(env, "MAX_REPORTS_PER_EVENT", 10_000),
        max_metrics=_int(env, "MAX_METRICS_PER_REPORT", 100),
        max_labels=_int(env, "MAX_LABELS_PER_REPORT", 20),
        max_name_length=_int(env, "MAX_NAME_LENGTH", 200),
        max_rows=_int(env, "MAX_ROWS_PER_EVENT", 10_000),
        max_features=_int(env, "MAX_FEATURES_PER_EVENT", 100),
        monitors_file=env.get("MONITORS_FILE") or "infra/knative/monitors/monitors.yaml",
        max_attribute_bytes=_int(
            env, "MAX_ATTRIBUTE_BYTES", 1024, minimum=64, maximum=MAX_ATTRIBUTE_BYTES_LIMIT
        ),
        spool_max_bytes=_int(env, "SPOOL_MAX_BYTES", 1024**3),
        stats_api_token=env.get("STATS_API_TOKEN") or None,
        alert_rules_file=env.get("ALERT_RULES_FILE") or "infra/knative/rules/alert-rules.yaml",
        slack_webhook_url=env.get("SLACK_WEBHOOK_URL") or None,
        alert_webhook_url=env.get("ALERT_WEBHOOK_URL") or None,
        stats_public_url=(env.get("STATS_PUBLIC_URL") or "http://127.0.0.1:8081").rstrip("/"),
        alert_retry_initial_ms=_int(env, "ALERT_RETRY_INITIAL_MS", 1_000),
        alert_retry_max_ms=_int(env, "ALERT_RETRY_MAX_MS", 600_000),
        alert_delivery_timeout_ms=_int(env, "ALERT_DELIVERY_TIMEOUT_MS", 5_000),
        alert_delivery_threads=_int(env, "ALERT_DELIVERY_THREADS", 2),
        alert_poll_interval_ms=_int(env, "ALERT_POLL_INTERVAL_MS", 5_000),
        etl_root=os.path.abspath(env["ETL_ROOT"]) if env.get("ETL_ROOT") else None,
        log_level=env.get("LOG_LEVEL") or "INFO",
        log_format=env.get("LOG_FORMAT") or "text",
        metrics_max_series=_int(env, "METRICS_MAX_SERIES", 1000, minimum=0),
        extra=env,
    )


_settings: Holder[Settings] = Holder(from_environment)


def get_settings() -> Settings:
    """This process's settings."""
    return _settings.get()


def use(settings: Settings) -> None:
    """This process's settings from now on (a forked child reads its environment anew)."""
    _settings.set(settings)


def forget() -> None:
    """Drop the settings in use: the next `get_settings()` reads the environment."""
    _settings.take()
