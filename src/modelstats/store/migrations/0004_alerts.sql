-- Alerts: per (rule, series) state, alert history, evaluated events, and a notification outbox.
-- Sample times ("at") drive `for` and `keep_firing_for`; wall-clock times drive repeats and
-- deliveries. Every write for one event happens in one transaction with its alert_events row.

-- One row per rule and series (fingerprint), locked FOR UPDATE while an event is evaluated,
-- so that concurrent alert processes agree on the state.
CREATE TABLE alert_states (
    rule             text        NOT NULL,
    fingerprint      text        NOT NULL,
    state            text        NOT NULL DEFAULT 'inactive'
                                 CHECK (state IN ('inactive', 'pending', 'firing')),
    alert_id         bigint,      -- the open alert while pending or firing
    active_since     timestamptz, -- sample time the condition started to hold
    fired_at         timestamptz, -- sample time the open alert started firing
    last_true_at     timestamptz, -- sample time the condition last held (keep_firing_for)
    last_eval_at     timestamptz, -- sample time of the last evaluation; older samples are stale
    last_notified_at timestamptz, -- wall clock of the last firing notification (repeat_interval)
    PRIMARY KEY (rule, fingerprint)
);

-- Alerts as GET /alerts lists them: one row from pending/firing to resolved (or back to
-- inactive when a pending alert never fired).
CREATE TABLE alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule        text        NOT NULL,
    fingerprint text        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('pending', 'firing', 'resolved', 'inactive')),
    model       text        NOT NULL,
    version     text        NOT NULL,
    metric      text        NOT NULL,
    labels      jsonb       NOT NULL, -- alertname, model, version, metric, severity + series labels
    annotations jsonb       NOT NULL,
    value       double precision,     -- at the last transition or notification
    active_at   timestamptz NOT NULL, -- pending since (sample time)
    fired_at    timestamptz,
    ended_at    timestamptz,          -- resolved or inactive (sample time)
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX alerts_active_at ON alerts (active_at DESC, id DESC);
CREATE INDEX alerts_open ON alerts (state) WHERE state IN ('pending', 'firing');
CREATE INDEX alerts_model_version ON alerts (model, version, active_at DESC);

-- Every transition, and every repeat notification (firing -> firing).
CREATE TABLE alert_transitions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id     bigint      NOT NULL REFERENCES alerts (id),
    rule         text        NOT NULL,
    fingerprint  text        NOT NULL,
    kind         text        NOT NULL
                             CHECK (kind IN ('pending', 'firing', 'repeat', 'resolved', 'inactive')),
    from_state   text        NOT NULL,
    to_state     text        NOT NULL,
    at           timestamptz NOT NULL, -- sample time
    value        double precision,
    recorded_at  timestamptz NOT NULL,
    event_source text        NOT NULL,
    event_id     text        NOT NULL,
    -- What the notifiers render (json, not jsonb: the report's metric order is kept).
    alert        json
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, id);

-- Each evaluated event once: a redelivery finds its row and gets the same reply, changing nothing.
CREATE TABLE alert_events (
    source      text        NOT NULL,
    id          text        NOT NULL,
    received_at timestamptz NOT NULL,
    reply_type  text,
    reply_id    text,
    reply_time  timestamptz,
    reply_data  json,
    PRIMARY KEY (source, id)
);
CREATE INDEX alert_events_received_at ON alert_events (received_at);

-- The outbox: one row per notifying transition and notifier, kept until delivered.
-- Claimed with FOR UPDATE SKIP LOCKED and marked delivered in the claiming transaction.
CREATE TABLE alert_notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transition_id   bigint      NOT NULL REFERENCES alert_transitions (id),
    notifier        text        NOT NULL,
    rule            text        NOT NULL,
    fingerprint     text        NOT NULL,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    delivered_at    timestamptz,
    UNIQUE (transition_id, notifier)
);
CREATE INDEX alert_notifications_due ON alert_notifications (next_attempt_at)
    WHERE delivered_at IS NULL;
-- Per notifier and alert, in order: a later notification waits for the earlier ones.
CREATE INDEX alert_notifications_order ON alert_notifications (notifier, rule, fingerprint, id)
    WHERE delivered_at IS NULL;
