-- Logged inference rows (ingest) and the inference job's state (see migrations/0009_inference.sql).

-- name: ensure_partitions
SELECT ensure_daily_partitions('inference_blocks', %s::date[])

-- name: ensure_models
INSERT INTO inference_models (model)
SELECT * FROM unnest(%s::text[]) ORDER BY 1
ON CONFLICT DO NOTHING

-- name: copy_blocks
COPY inference_blocks (model, kind, time_min, time_max, rows, meta, features, outputs, scores)
FROM STDIN (FORMAT BINARY)

-- name: models
SELECT model, closed_until, last_seq, labels_seq, labelled FROM inference_models ORDER BY model

-- name: first_time
SELECT min(time_min) AS first FROM inference_blocks WHERE model = %s

-- name: blocks
-- Blocks whose first row falls in [start, until): a block's rows lie within one aligned minute,
-- so a caller that wants rows from `t` on asks from the start of t's minute.
SELECT kind, time_max, meta, features, outputs, scores
FROM inference_blocks
WHERE model = %(model)s AND kind = ANY(%(kinds)s)
  AND time_min >= %(start)s AND time_min < %(until)s
ORDER BY seq

-- name: late_blocks
-- Blocks written since the last run with rows before the windows already profiled.
SELECT meta
FROM inference_blocks
WHERE seq > %(after)s AND model = %(model)s AND kind IN ('request', 'record')
  AND time_min < %(before)s

-- name: newest_seq
SELECT coalesce(max(seq), 0) AS seq FROM inference_blocks

-- name: close_windows
UPDATE inference_models SET closed_until = %(until)s, last_seq = %(seq)s WHERE model = %(model)s

-- name: save_profile
INSERT INTO inference_profiles
    (model, version, window_start, window_end, feature, kind, rows, missing, sketch, total,
     squares)
VALUES (%(model)s, %(version)s, %(start)s, %(end)s, %(feature)s, %(kind)s, %(rows)s,
        %(missing)s, %(sketch)s, %(total)s, %(squares)s)
ON CONFLICT (model, version, window_start, feature) DO UPDATE
SET window_end = EXCLUDED.window_end, kind = EXCLUDED.kind, rows = EXCLUDED.rows,
    missing = EXCLUDED.missing, sketch = EXCLUDED.sketch, total = EXCLUDED.total,
    squares = EXCLUDED.squares

-- name: drop_partitions
SELECT drop_daily_partitions_before('inference_blocks', %s::date) AS dropped

-- name: range_blocks
-- The blocks of a range in time order: their request and record rows make the run's row
-- budget, and when they arrived tells which windows are still receiving rows.
SELECT time_min, kind, rows, received_at FROM inference_blocks
WHERE model = %s AND time_min >= %s AND time_min < %s
ORDER BY time_min

-- name: reference
SELECT origin, rows, columns, created_at FROM inference_references
WHERE model = %s AND version = %s

-- name: reference_sketches
SELECT feature, kind, count, sketch, total, squares FROM inference_reference_sketches
WHERE model = %s AND version = %s

-- name: delete_reference
DELETE FROM inference_references WHERE model = %s AND version = %s

-- name: insert_reference
INSERT INTO inference_references (model, version, origin, rows, columns)
VALUES (%s, %s, %s, %s, %s)

-- name: insert_reference_sketch
INSERT INTO inference_reference_sketches (model, version, feature, kind, count, sketch, total,
                                          squares)
VALUES (%(model)s, %(version)s, %(feature)s, %(kind)s, %(count)s, %(sketch)s, %(total)s,
        %(squares)s)

-- name: references
SELECT model, version, origin, rows, columns IS NOT NULL AS exact, created_at
FROM inference_references
WHERE (%(model)s::text IS NULL OR model = %(model)s)
ORDER BY model, version

-- name: window_sketches
-- The kept sketches of a range of windows (a pinned reference whose rows are gone).
SELECT feature, kind, rows, missing, sketch, total, squares FROM inference_profiles
WHERE model = %s AND version = %s AND window_start >= %s AND window_end <= %s

-- name: profiled_versions
SELECT DISTINCT model, version FROM inference_profiles
WHERE (%(model)s::text IS NULL OR model = %(model)s)

-- name: upsert_labels
-- One row per (model, id) in the batch (the caller keeps the latest); a label learnt earlier
-- than the one kept changes nothing.
INSERT INTO inference_labels AS kept (model, id, label, value, time)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::timestamptz[])
ORDER BY 1, 2
ON CONFLICT (model, id) DO UPDATE
SET label = EXCLUDED.label, value = EXCLUDED.value, time = EXCLUDED.time,
    received_at = now(), seq = nextval('inference_labels_seq')
WHERE EXCLUDED.time >= kept.time

-- name: ensure_prediction_partitions
SELECT ensure_daily_partitions('inference_predictions', %s::date[])

-- name: copy_predictions
COPY inference_predictions (model, id, version, window_start, time, prediction, value, score,
                             indexed)
FROM STDIN (FORMAT BINARY)

-- name: mark_labelled
-- Models with a label that were not marked yet: from now on their predictions are indexed by
-- id (migrations/0012_ids_of_labelled_models.sql).
UPDATE inference_models m SET labelled = true
WHERE NOT m.labelled AND EXISTS (SELECT 1 FROM inference_labels l WHERE l.model = m.model)
RETURNING model

-- name: index_predictions
-- The predictions a model kept before it was marked, into the id index.
UPDATE inference_predictions SET indexed = true WHERE model = %s AND NOT indexed

-- name: newest_label_seq
SELECT coalesce(max(seq), 0) AS seq FROM inference_labels

-- name: labelled_windows
-- The windows holding a row whose label is newer than what the last run saw.
SELECT DISTINCT p.version, p.window_start
FROM inference_labels l
JOIN inference_predictions p ON p.model = l.model AND p.id = l.id AND p.indexed
WHERE l.model = %(model)s AND l.seq > %(after)s AND p.window_start >= %(since)s

-- name: window_sizes
-- How many rows each of some windows of a model holds. (The ANY lets the planner prune the
-- days and use the window_start index whatever way it joins the list.)
SELECT p.version, p.window_start, count(*) AS total
FROM inference_predictions p
JOIN unnest(%(versions)s::text[], %(starts)s::timestamptz[]) AS w(version, start)
  ON p.version = w.version AND p.window_start = w.start
WHERE p.model = %(model)s AND p.window_start = ANY(%(starts)s::timestamptz[])
GROUP BY p.version, p.window_start

-- name: window_labelled
-- The rows of some windows of a model that have a label, each with it: a window just profiled
-- mostly has none yet, and its other rows need not be read to say so.
SELECT p.version, p.window_start, p.id, p.time, p.prediction, p.value, p.score,
       l.label, l.value AS label_value, l.time AS label_time
FROM inference_predictions p
JOIN unnest(%(versions)s::text[], %(starts)s::timestamptz[]) AS w(version, start)
  ON p.version = w.version AND p.window_start = w.start
JOIN inference_labels l ON l.model = p.model AND l.id = p.id
WHERE p.model = %(model)s AND p.window_start = ANY(%(starts)s::timestamptz[])

-- name: close_labels
UPDATE inference_models SET labels_seq = %(seq)s WHERE model = %(model)s

-- name: forget_labels
-- Labels past the horizon go; those that never found their row are counted.
WITH gone AS (
    DELETE FROM inference_labels WHERE model = %(model)s AND time < %(before)s
    RETURNING model, id
)
SELECT count(*) FILTER (
    WHERE NOT EXISTS (
        SELECT 1 FROM inference_predictions p
        WHERE p.model = gone.model AND p.id = gone.id AND p.indexed
    )
) AS unmatched
FROM gone

-- name: drop_prediction_partitions
SELECT drop_daily_partitions_before('inference_predictions', %s::date) AS dropped
