-- Stats queries (see stats.py). Series are looked up first; the other statements take their ids.

-- name: series
SELECT id, version, metric
FROM series
WHERE model = %(model)s
  AND (%(version)s::text IS NULL OR version = %(version)s::text)
  AND (%(metrics)s::text[] IS NULL OR metric = ANY(%(metrics)s::text[]))
  AND labels @> ALL(%(labels)s::jsonb[])
ORDER BY id

-- name: model_exists
SELECT EXISTS (
    SELECT 1 FROM series
    WHERE model = %(model)s AND (%(version)s::text IS NULL OR version = %(version)s::text)
) AS found

-- name: exact_summary
-- Exact aggregates over raw samples per group of series (a group: one version and metric).
SELECT r.grp, count(*) AS n, avg(s.value) AS mean, min(s.value) AS lo, max(s.value) AS hi,
       stddev_samp(s.value) AS stddev,
       percentile_cont(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY s.value) AS percentiles
FROM unnest(%(ids)s::integer[], %(groups)s::integer[]) AS r(id, grp)
JOIN samples s ON s.series_id = r.id AND s.time >= %(since)s AND s.time < %(until)s
GROUP BY r.grp

-- name: ends
-- First and last sample of each series in the window (index probes from both ends).
SELECT r.id AS series_id, f.time AS first, l.time AS last, l.value AS last_value
FROM unnest(%(ids)s::integer[]) AS r(id)
JOIN LATERAL (
    SELECT s.time FROM samples s
    WHERE s.series_id = r.id AND s.time >= %(since)s AND s.time < %(until)s
    ORDER BY s.time LIMIT 1
) f ON true
JOIN LATERAL (
    SELECT s.time, s.value FROM samples s
    WHERE s.series_id = r.id AND s.time >= %(since)s AND s.time < %(until)s
    ORDER BY s.time DESC, s.value DESC LIMIT 1
) l ON true

-- name: partition_days
SELECT to_date(substr(c.relname, 9), 'YYYYMMDD') AS day
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'samples'::regclass AND c.relname ~ '^samples_[0-9]{8}$'
  AND to_date(substr(c.relname, 9), 'YYYYMMDD') >= %(first)s
  AND to_date(substr(c.relname, 9), 'YYYYMMDD') < %(end)s

-- name: rollup_keys
-- Which (series, day) rollups exist and still belong to the day's current partition.
SELECT r.series_id, r.day
FROM stats_daily r
JOIN pg_inherits i ON i.inhrelid = r.part AND i.inhparent = 'samples'::regclass
WHERE r.series_id = ANY(%(ids)s::integer[]) AND r.day >= %(first)s AND r.day < %(end)s

-- name: lock_timeout
SELECT set_config('lock_timeout', %(timeout)s, true)

-- name: lock_day
SELECT stats_lock_day(%(day)s::date) AS part

-- name: compute_rollups
-- One day of the given series, rolled up (rows with n = 0 mark series without samples).
WITH raw AS (
    SELECT s.series_id, s.value
    FROM samples s
    WHERE s.series_id = ANY(%(ids)s::integer[]) AND s.time >= %(start)s AND s.time < %(end)s
), moments AS (
    SELECT series_id, count(*) AS n, avg(value) AS mean, var_pop(value) * count(*) AS m2,
           min(value) AS lo, max(value) AS hi
    FROM raw GROUP BY series_id
), buckets AS (
    SELECT series_id, stats_sketch_key(value) AS key, count(*)::integer AS n
    FROM raw GROUP BY 1, 2
), sketches AS (
    SELECT series_id, array_agg(key ORDER BY key) AS keys, array_agg(n ORDER BY key) AS counts
    FROM buckets GROUP BY series_id
)
INSERT INTO stats_daily AS d (series_id, day, part, n, mean, m2, lo, hi, keys, counts)
SELECT i.id, %(day)s, %(part)s, coalesce(m.n, 0), m.mean, m.m2, m.lo, m.hi,
       coalesce(k.keys, '{}'), coalesce(k.counts, '{}')
FROM unnest(%(ids)s::integer[]) AS i(id)
LEFT JOIN moments m ON m.series_id = i.id
LEFT JOIN sketches k ON k.series_id = i.id
ON CONFLICT (series_id, day) DO UPDATE
SET part = excluded.part, n = excluded.n, mean = excluded.mean, m2 = excluded.m2,
    lo = excluded.lo, hi = excluded.hi, keys = excluded.keys, counts = excluded.counts,
    computed_at = now()

-- name: forget_dropped
-- Rollups of partitions that retention dropped.
DELETE FROM stats_daily
WHERE part NOT IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'samples'::regclass)

-- name: moments
-- Mergeable moments per series: whole days from rollups, the rest of the window from samples.
SELECT r.series_id, r.n, r.mean, r.m2, r.lo, r.hi
FROM stats_daily r
JOIN pg_inherits i ON i.inhrelid = r.part AND i.inhparent = 'samples'::regclass
WHERE r.series_id = ANY(%(ids)s::integer[]) AND r.day >= %(first)s AND r.day < %(end)s
  AND r.n > 0
UNION ALL
SELECT s.series_id, count(*), avg(s.value), var_pop(s.value) * count(*), min(s.value),
       max(s.value)
FROM samples s
WHERE s.series_id = ANY(%(ids)s::integer[])
  AND ((s.time >= %(since)s AND s.time < %(rollup_start)s)
       OR (s.time >= %(rollup_end)s AND s.time < %(until)s))
GROUP BY s.series_id

-- name: histogram
-- The merged sketch per series: bucket key and count, in key order.
SELECT series_id, key, sum(n)::bigint AS n
FROM (
    SELECT r.series_id, k.key, k.n
    FROM stats_daily r
    JOIN pg_inherits i ON i.inhrelid = r.part AND i.inhparent = 'samples'::regclass
    CROSS JOIN LATERAL unnest(r.keys, r.counts) AS k(key, n)
    WHERE r.series_id = ANY(%(ids)s::integer[]) AND r.day >= %(first)s AND r.day < %(end)s
    UNION ALL
    SELECT s.series_id, stats_sketch_key(s.value), 1
    FROM samples s
    WHERE s.series_id = ANY(%(ids)s::integer[])
      AND ((s.time >= %(since)s AND s.time < %(rollup_start)s)
           OR (s.time >= %(rollup_end)s AND s.time < %(until)s))
) AS b
GROUP BY series_id, key
ORDER BY series_id, key

-- name: buckets
-- Time buckets aligned on the Unix epoch (UTC), exact over raw samples.
SELECT r.grp, date_bin(%(bucket)s::interval, s.time, '1970-01-01T00:00:00Z'::timestamptz) AS t,
       count(*) AS n, avg(s.value) AS mean, min(s.value) AS lo, max(s.value) AS hi,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value) AS p95
FROM unnest(%(ids)s::integer[], %(groups)s::integer[]) AS r(id, grp)
JOIN samples s ON s.series_id = r.id AND s.time >= %(since)s AND s.time < %(until)s
GROUP BY r.grp, t
ORDER BY r.grp, t

-- name: models
SELECT id, model, version, metric, labels FROM series ORDER BY model, version, metric, id

-- name: last_samples
-- The time of the newest sample of each group of series, at any time (one probe per series).
SELECT r.grp, max(l.time) AS newest
FROM unnest(%(ids)s::integer[], %(groups)s::integer[]) AS r(id, grp)
JOIN LATERAL (
    SELECT s.time FROM samples s WHERE s.series_id = r.id ORDER BY s.time DESC LIMIT 1
) l ON true
GROUP BY r.grp

-- name: last_values
-- The newest sample of each (model, version, metric) since %(since)s (label sets merged: the
-- newest of them), the most recently updated first, at most %(limit)s rows; `total` counts
-- them all, so the caller knows how many it left out.
SELECT model, version, metric, time, value, count(*) OVER () AS total
FROM (
    SELECT DISTINCT ON (r.model, r.version, r.metric) r.model, r.version, r.metric, l.time, l.value
    FROM series r
    JOIN LATERAL (
        SELECT s.time, s.value FROM samples s
        WHERE s.series_id = r.id AND s.time >= %(since)s
        ORDER BY s.time DESC, s.value DESC LIMIT 1
    ) l ON true
    ORDER BY r.model, r.version, r.metric, l.time DESC, l.value DESC
) newest
ORDER BY time DESC, model, version, metric
LIMIT %(limit)s

-- name: inference_series
-- A version's series of these metrics written by the etl's inference job (source=inference).
SELECT id, metric, labels
FROM series
WHERE model = %(model)s AND version = %(version)s AND metric = ANY(%(metrics)s::text[])
  AND labels @> '{"source": "inference"}'::jsonb
ORDER BY id

-- name: window_gap
-- The smallest gap between two successive sample times of these series in the range, in
-- seconds: the width of the windows they were written for (null for fewer than two).
SELECT extract(epoch FROM min(t - previous))::float8 AS seconds
FROM (
    SELECT t, lag(t) OVER (ORDER BY t) AS previous
    FROM (
        SELECT DISTINCT s.time AS t
        FROM samples s
        WHERE s.series_id = ANY(%(ids)s::integer[]) AND s.time >= %(since)s AND s.time < %(until)s
    ) AS times
) AS gaps

-- name: cells
-- Per series and cell (%(cell)s wide, aligned on the epoch as the windows are): how many
-- samples, their min, max and sum, and how many of them are below 1 from %(open_since)s on
-- (a label coverage short of whole within the label horizon: a provisional window).
SELECT s.series_id,
       date_bin(%(cell)s::interval, s.time, '1970-01-01T00:00:00Z'::timestamptz) AS time,
       count(*) AS n, min(s.value) AS lo, max(s.value) AS hi, sum(s.value) AS total,
       count(*) FILTER (WHERE s.time >= %(open_since)s AND s.value < 1) AS open
FROM samples s
WHERE s.series_id = ANY(%(ids)s::integer[]) AND s.time >= %(since)s AND s.time < %(until)s
GROUP BY 1, 2
ORDER BY 2, 1

-- name: column_cells
-- The drift verdicts of each column (feature and method) per cell, %(cell)s wide: how many
-- windows were judged and drifted (feature_drifted), the least and the greatest figure
-- (feature_drift: the most drifted is the least of p-values, the greatest of distances).
-- Samples are grouped by series first: the labels are read once a series and cell, not a row.
WITH per_series AS (
    SELECT s.series_id,
           date_bin(%(cell)s::interval, s.time, '1970-01-01T00:00:00Z'::timestamptz) AS time,
           count(*) AS n, sum(s.value) AS total, min(s.value) AS lo, max(s.value) AS hi
    FROM samples s
    WHERE s.series_id = ANY(%(ids)s::integer[]) AND s.time >= %(since)s AND s.time < %(until)s
    GROUP BY 1, 2
)
SELECT r.labels ->> 'feature' AS feature, r.labels ->> 'method' AS method, p.time,
       coalesce(sum(p.n) FILTER (WHERE r.metric = 'feature_drifted'), 0)::integer AS judged,
       coalesce(sum(p.total) FILTER (WHERE r.metric = 'feature_drifted'), 0) AS drifted,
       min(p.lo) FILTER (WHERE r.metric = 'feature_drift') AS lo,
       max(p.hi) FILTER (WHERE r.metric = 'feature_drift') AS hi
FROM per_series p
JOIN series r ON r.id = p.series_id
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3

-- name: newest_with_companion
-- The newest sample in the range of each series of %(metrics)s, and the sample at the same
-- time of its companion: the series of the paired metric in %(companions)s with the same
-- model, version and labels (an accuracy's label coverage, a drift share's dataset verdict).
SELECT r.model, r.version, r.metric, r.labels, l.time, l.value, c.value AS companion
FROM unnest(%(metrics)s::text[], %(companions)s::text[]) AS m(metric, companion)
JOIN series r ON r.metric = m.metric
JOIN LATERAL (
    SELECT s.time, s.value FROM samples s
    WHERE s.series_id = r.id AND s.time >= %(since)s AND s.time < %(until)s
    ORDER BY s.time DESC, s.value DESC LIMIT 1
) l ON true
LEFT JOIN series p
  ON p.model = r.model AND p.version = r.version AND p.metric = m.companion
 AND p.labels = r.labels
LEFT JOIN LATERAL (
    SELECT s.value FROM samples s
    WHERE s.series_id = p.id AND s.time = l.time
    ORDER BY s.value DESC LIMIT 1
) c ON true
ORDER BY r.model, r.version, r.metric, l.time

-- name: inference_totals
-- Each model version's sum over the range of its inference series of these metrics.
SELECT r.model, r.version, r.metric, sum(s.value) AS total
FROM series r
JOIN samples s ON s.series_id = r.id AND s.time >= %(since)s AND s.time < %(until)s
WHERE r.metric = ANY(%(metrics)s::text[]) AND r.labels @> '{"source": "inference"}'::jsonb
GROUP BY 1, 2, 3
