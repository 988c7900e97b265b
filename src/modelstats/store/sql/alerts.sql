-- Alert state, history, evaluated events and the notification outbox
-- (see migrations/0004_alerts.sql).

-- name: claim_events
-- The events of a batch that were never evaluated. Sorted, so that concurrent batches take the
-- unique-index locks in one order; a concurrent delivery of the same event waits here for the
-- first one's commit, then conflicts.
INSERT INTO alert_events (source, id, received_at)
SELECT * FROM unnest(%(sources)s::text[], %(ids)s::text[], %(received)s::timestamptz[])
ORDER BY 1, 2
ON CONFLICT DO NOTHING
RETURNING source, id

-- name: event_replies
SELECT e.source, e.id, e.reply_type, e.reply_id, e.reply_time, e.reply_data
FROM alert_events e
JOIN unnest(%(sources)s::text[], %(ids)s::text[]) AS k(source, id)
  ON e.source = k.source AND e.id = k.id

-- name: save_reply
UPDATE alert_events
SET reply_type = %(type)s, reply_id = %(id)s, reply_time = %(time)s, reply_data = %(data)s
WHERE source = %(event_source)s AND id = %(event_id)s

-- name: ensure_states
-- Sorted so that concurrent events take the unique-index locks in one order (no deadlock).
INSERT INTO alert_states (rule, fingerprint)
SELECT * FROM unnest(%s::text[], %s::text[])
ORDER BY 1, 2
ON CONFLICT DO NOTHING

-- name: lock_states
-- Sorted: concurrent batches lock the states they share in one order (no deadlock).
SELECT s.rule, s.fingerprint, s.state, s.alert_id, s.active_since, s.fired_at,
       s.last_true_at, s.last_eval_at, s.last_notified_at
FROM alert_states s
JOIN unnest(%s::text[], %s::text[]) AS k(rule, fingerprint)
  ON s.rule = k.rule AND s.fingerprint = k.fingerprint
ORDER BY s.rule, s.fingerprint
FOR UPDATE OF s

-- name: save_states
UPDATE alert_states s
SET state = k.state, alert_id = k.alert_id, active_since = k.active_since,
    fired_at = k.fired_at, last_true_at = k.last_true_at, last_eval_at = k.last_eval_at,
    last_notified_at = k.last_notified_at
FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::timestamptz[],
            %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[])
     AS k(rule, fingerprint, state, alert_id, active_since, fired_at, last_true_at,
          last_eval_at, last_notified_at)
WHERE s.rule = k.rule AND s.fingerprint = k.fingerprint

-- name: window_aggregates
-- One row per requested window (i): the samples of one series in (since, until], and the count
-- with the one aggregate its rule asks for: the sorts of the others would cost the window's size.
SELECT k.i,
       count(s.value) AS count,
       CASE k.aggregation
           WHEN 'mean' THEN avg(s.value)
           WHEN 'min' THEN min(s.value)
           WHEN 'max' THEN max(s.value)
           WHEN 'count' THEN count(s.value)
           WHEN 'p50' THEN percentile_cont(0.5) WITHIN GROUP (ORDER BY s.value)
                           FILTER (WHERE k.aggregation = 'p50')
           WHEN 'p95' THEN percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value)
                           FILTER (WHERE k.aggregation = 'p95')
           WHEN 'p99' THEN percentile_cont(0.99) WITHIN GROUP (ORDER BY s.value)
                           FILTER (WHERE k.aggregation = 'p99')
           WHEN 'last' THEN (array_agg(s.value ORDER BY s.time DESC)
                             FILTER (WHERE k.aggregation = 'last'))[1]
       END AS value
FROM unnest(%s::integer[], %s::text[], %s::text[], %s::text[], %s::jsonb[],
            %s::timestamptz[], %s::timestamptz[], %s::text[])
     AS k(i, model, version, metric, labels, since, until, aggregation)
LEFT JOIN series r
  ON r.model = k.model AND r.version = k.version AND r.metric = k.metric AND r.labels = k.labels
LEFT JOIN samples s
  ON s.series_id = r.id AND s.time > k.since AND s.time <= k.until
GROUP BY k.i, k.aggregation

-- name: open_alerts
-- The alerts pending or firing now, as GET /alerts reads them (the schedule's tick).
SELECT id, rule, fingerprint, state, model, version, metric, labels, annotations, value,
       active_at, fired_at, ended_at, updated_at
FROM alerts
WHERE state IN ('pending', 'firing')
ORDER BY rule, fingerprint

-- name: newest_samples
-- Every series with a sample after %(since)s, and the time of its newest one: what the absence
-- rules judge. One backward index probe per series, in the partitions after `since` only.
SELECT r.model, r.version, r.metric, r.labels, newest.time AS newest
FROM series r
CROSS JOIN LATERAL (
    SELECT s.time
    FROM samples s
    WHERE s.series_id = r.id AND s.time > %(since)s
    ORDER BY s.time DESC
    LIMIT 1
) newest

-- name: insert_alert
-- Both return the row as GET /alerts reads it (store/alert_history.Alert): the notification
-- is built from it.
INSERT INTO alerts (rule, fingerprint, state, model, version, metric, labels, annotations,
                    value, active_at, fired_at, created_at, updated_at)
VALUES (%(rule)s, %(fingerprint)s, %(state)s, %(model)s, %(version)s, %(metric)s, %(labels)s,
        %(annotations)s, %(value)s, %(active_at)s, %(fired_at)s, %(now)s, %(now)s)
RETURNING id, rule, fingerprint, state, model, version, metric, labels, annotations, value,
          active_at, fired_at, ended_at, updated_at

-- name: update_alert
UPDATE alerts
SET state = %(state)s, value = %(value)s, annotations = %(annotations)s,
    fired_at = coalesce(%(fired_at)s, fired_at), ended_at = %(ended_at)s, updated_at = %(now)s
WHERE id = %(id)s
RETURNING id, rule, fingerprint, state, model, version, metric, labels, annotations, value,
          active_at, fired_at, ended_at, updated_at

-- name: insert_transition
INSERT INTO alert_transitions (alert_id, rule, fingerprint, kind, from_state, to_state, at,
                               value, recorded_at, event_source, event_id, alert)
VALUES (%(alert_id)s, %(rule)s, %(fingerprint)s, %(kind)s, %(from_state)s, %(to_state)s,
        %(at)s, %(value)s, %(now)s, %(event_source)s, %(event_id)s, %(alert)s)
RETURNING id

-- name: insert_notifications
INSERT INTO alert_notifications (transition_id, notifier, rule, fingerprint, created_at,
                                 next_attempt_at)
SELECT %(transition_id)s, n, %(rule)s, %(fingerprint)s, %(now)s, %(now)s
FROM unnest(%(notifiers)s::text[]) AS n

-- name: claim_notification
-- The oldest due notification of a notifier this process can send whose earlier notifications
-- (same notifier, rule and series) are all delivered; locked until delivered or rescheduled.
SELECT n.id, n.notifier, n.attempts, t.alert
FROM alert_notifications n
JOIN alert_transitions t ON t.id = n.transition_id
WHERE n.delivered_at IS NULL
  AND n.next_attempt_at <= %s
  AND n.notifier = ANY(%s::text[])
  AND NOT (n.id = ANY(%s::bigint[]))
  AND NOT EXISTS (
      SELECT 1 FROM alert_notifications p
      WHERE p.notifier = n.notifier AND p.rule = n.rule AND p.fingerprint = n.fingerprint
        AND p.delivered_at IS NULL AND p.id < n.id)
ORDER BY n.next_attempt_at, n.id
LIMIT 1
FOR UPDATE OF n SKIP LOCKED

-- name: mark_delivered
UPDATE alert_notifications
SET delivered_at = %s, attempts = attempts + 1, last_error = NULL
WHERE id = %s

-- name: mark_failed
UPDATE alert_notifications
SET attempts = attempts + 1, next_attempt_at = %s, last_error = %s
WHERE id = %s

-- name: next_due
-- When the next claimable notification falls due (those waiting behind an earlier one do not count).
SELECT min(n.next_attempt_at) AS due
FROM alert_notifications n
WHERE n.delivered_at IS NULL
  AND n.notifier = ANY(%s::text[])
  AND NOT EXISTS (
      SELECT 1 FROM alert_notifications p
      WHERE p.notifier = n.notifier AND p.rule = n.rule AND p.fingerprint = n.fingerprint
        AND p.delivered_at IS NULL AND p.id < n.id)

-- name: undelivered
SELECT notifier, count(*)::integer AS count, min(next_attempt_at) AS next_attempt_at,
       max(attempts) AS attempts
FROM alert_notifications
WHERE delivered_at IS NULL
GROUP BY notifier
ORDER BY notifier

-- name: list_alerts
-- GET /alerts: newest first; `since` keeps the alerts open at any time since then.
SELECT a.id, a.rule, a.fingerprint, a.state, a.model, a.version, a.metric, a.labels,
       a.annotations, a.value, a.active_at, a.fired_at, a.ended_at, a.updated_at
FROM alerts a
WHERE (%(states)s::text[] IS NULL OR a.state = ANY(%(states)s::text[]))
  AND (%(model)s::text IS NULL OR a.model = %(model)s::text)
  AND (%(version)s::text IS NULL OR a.version = %(version)s::text)
  AND (%(since)s::timestamptz IS NULL OR coalesce(a.ended_at, 'infinity') >= %(since)s::timestamptz)
ORDER BY a.active_at DESC, a.id DESC
LIMIT %(limit)s

-- name: list_transitions
SELECT alert_id, kind, from_state, to_state, at, value, recorded_at
FROM alert_transitions
WHERE alert_id = ANY(%(alert_ids)s::bigint[])
ORDER BY alert_id, id
