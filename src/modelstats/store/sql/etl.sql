-- The ETL's watermark and state (see migrations/0005_etl.sql).

-- name: lock_timeout
SELECT set_config('lock_timeout', %s, true)

-- name: ensure_source
INSERT INTO etl_sources (source) VALUES (%s) ON CONFLICT DO NOTHING

-- name: lock_source
SELECT newest_time, reported_until FROM etl_sources WHERE source = %s FOR UPDATE

-- name: update_source
UPDATE etl_sources SET newest_time = %s, reported_until = %s, updated_at = now()
WHERE source = %s

-- name: select_files
SELECT device, inode, path, read_offset, head_length, head_sha256
FROM etl_files WHERE source = %s

-- name: upsert_files
INSERT INTO etl_files (source, device, inode, path, read_offset, head_length, head_sha256)
SELECT %s, * FROM unnest(%s::numeric[], %s::numeric[], %s::text[], %s::bigint[],
                         %s::integer[], %s::bytea[])
ON CONFLICT (source, device, inode) DO UPDATE
SET path = excluded.path, read_offset = excluded.read_offset,
    head_length = excluded.head_length, head_sha256 = excluded.head_sha256, seen_at = now()

-- name: forget_files
-- A file gone from the directory for a month is not coming back.
DELETE FROM etl_files WHERE source = %s AND seen_at < now() - interval '30 days'

-- name: take_pending
DELETE FROM etl_pending WHERE source = %s AND time < %s
RETURNING model, version, time, correct, latency_ms, score

-- name: copy_pending
COPY etl_pending (source, model, version, time, correct, latency_ms, score)
FROM STDIN (FORMAT BINARY)

-- name: select_references
SELECT model, version, origin, edges, shares, size FROM etl_references WHERE source = %s

-- name: delete_references
DELETE FROM etl_references WHERE source = %s

-- name: insert_reference
INSERT INTO etl_references (source, model, version, origin, edges, shares, size)
VALUES (%s, %s, %s, %s, %s, %s, %s)

-- name: select_reply
SELECT event_id, reports, time FROM etl_replies
WHERE source = %s AND ping_source = %s AND ping_id = %s

-- name: insert_reply
INSERT INTO etl_replies (source, ping_source, ping_id, event_id, reports, time)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING

-- name: forget_replies
DELETE FROM etl_replies WHERE source = %s AND created_at < now() - interval '1 day'
