-- name: insert
-- One letter per event and failed destination: a redelivery, or the same event failing there
-- again after a replay, reopens the letter (pending again, one more failure, latest error).
INSERT INTO dead_letters AS letter
    (event_source, event_id, event_type, error_dest, error_code, error_data, attributes, data)
VALUES (%(source)s, %(event_id)s, %(type)s, %(error_dest)s, %(error_code)s, %(error_data)s,
        %(attributes)s, %(data)s)
ON CONFLICT (dead_letter_digest(event_source), dead_letter_digest(event_id),
             dead_letter_digest(coalesce(error_dest, '')))
DO UPDATE SET failures    = letter.failures + 1,
              failed_at   = now(),
              event_type  = EXCLUDED.event_type,
              error_code  = EXCLUDED.error_code,
              error_data  = EXCLUDED.error_data,
              attributes  = EXCLUDED.attributes,
              data        = EXCLUDED.data,
              replayed_at = NULL
RETURNING id, failures

-- name: list
SELECT id, received_at, failed_at, failures, event_source AS source, event_id,
       event_type AS type, error_dest, error_code, error_data, attributes, data, replayed_at
FROM dead_letters
WHERE (%(pending)s IS FALSE OR replayed_at IS NULL)
  AND (%(since)s::timestamptz IS NULL OR failed_at >= %(since)s::timestamptz)
ORDER BY failed_at DESC, id DESC
LIMIT %(limit)s

-- name: mark_replayed
-- Only the failure that was read: if the event failed again meanwhile (the sink bumped
-- `failures`), the letter stays pending for that new failure.
UPDATE dead_letters SET replayed_at = now()
WHERE id = %(id)s AND failures = %(failures)s AND replayed_at IS NULL
