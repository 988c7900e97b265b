-- name: insert
INSERT INTO dead_letters
    (event_source, event_id, event_type, error_dest, error_code, error_data, attributes, data)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_source, event_id, (coalesce(error_dest, ''))) WHERE replayed_at IS NULL
DO NOTHING
RETURNING id

-- name: list
SELECT id, received_at, event_source AS source, event_id, event_type AS type, error_dest,
       error_code, error_data, attributes, data, replayed_at
FROM dead_letters
WHERE (%(pending)s IS FALSE OR replayed_at IS NULL)
  AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
ORDER BY id DESC
LIMIT %(limit)s

-- name: mark_replayed
UPDATE dead_letters SET replayed_at = now() WHERE id = %s AND replayed_at IS NULL
