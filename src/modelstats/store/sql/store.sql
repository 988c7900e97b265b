-- Samples, series and the dedup record of each delivered event (see migrations/0001_store.sql).

-- name: ensure_partitions
SELECT ensure_sample_partitions(%s::date[])

-- name: upsert_series
INSERT INTO series (model, version, metric, labels)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[])
ORDER BY 1, 2, 3, 4
ON CONFLICT DO NOTHING

-- name: select_series
SELECT s.id, s.model, s.version, s.metric, s.labels
FROM series s
JOIN unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[]) AS k(model, version, metric, labels)
  ON s.model = k.model AND s.version = k.version AND s.metric = k.metric AND s.labels = k.labels

-- name: insert_events
-- Sorted so that concurrent batches take the unique-index locks in one order (no deadlock).
INSERT INTO ingest_events (source, id, received_at, samples)
SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::integer[])
ORDER BY 1, 2
ON CONFLICT DO NOTHING
RETURNING source, id

-- name: select_events
SELECT e.source, e.id, e.received_at
FROM ingest_events e
JOIN unnest(%s::text[], %s::text[]) AS k(source, id) ON e.source = k.source AND e.id = k.id
WHERE e.type = 'modelstats.metric.reported'

-- name: insert_typed_events
-- Logged inference events: a request and its response share source and id (KServe's logger).
INSERT INTO ingest_events (source, id, type, received_at, samples)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::integer[])
ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING
RETURNING source, id, type

-- name: delete_samples
-- The samples `replace` reports take the place of (a window's figures recomputed).
DELETE FROM samples s
USING unnest(%s::integer[], %s::timestamptz[]) AS k(series_id, time)
WHERE s.series_id = k.series_id AND s.time = k.time

-- name: copy_samples
COPY samples (series_id, time, value) FROM STDIN (FORMAT BINARY)
