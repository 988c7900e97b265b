-- Retention: samples go by whole daily partitions; the bookkeeping rows of other tables that
-- only matter for redeliveries (dedup records, evaluated events, sent notifications, replayed
-- dead letters) go by age. Alert history and pending work are kept.

-- name: drop_partitions
SELECT drop_sample_partitions_before(%s::date)

-- name: forget_ingest_events
DELETE FROM ingest_events WHERE received_at < %s::date

-- name: forget_alert_events
DELETE FROM alert_events WHERE received_at < %s::date

-- name: forget_sent_notifications
DELETE FROM alert_notifications WHERE delivered_at < %s::date

-- name: forget_replayed_dead_letters
DELETE FROM dead_letters WHERE replayed_at < %s::date
