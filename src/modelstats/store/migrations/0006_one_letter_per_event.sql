-- One dead letter per event and failed destination. Until now a letter that had been replayed
-- left room for a second one: an event that failed again after a replay (a 400 replays into
-- a 400) became a new row each time. Now the sink reopens the existing letter instead: it
-- counts the failures, records the latest, and makes the letter pending again.
ALTER TABLE dead_letters
    ADD COLUMN failures  integer     NOT NULL DEFAULT 1,
    ADD COLUMN failed_at timestamptz;
UPDATE dead_letters SET failed_at = received_at;
ALTER TABLE dead_letters ALTER COLUMN failed_at SET NOT NULL,
                         ALTER COLUMN failed_at SET DEFAULT now();

-- Fold the rows earlier replays multiplied into the newest one of each event (the only one
-- that can still be pending), keeping the first arrival and the count.
WITH grouped AS (
    SELECT event_source, event_id, coalesce(error_dest, '') AS dest,
           max(id) AS keep_id, min(received_at) AS first_received, count(*) AS letters
    FROM dead_letters
    GROUP BY 1, 2, 3
    HAVING count(*) > 1
), folded AS (
    UPDATE dead_letters d
    SET failures = g.letters, received_at = g.first_received
    FROM grouped g
    WHERE d.id = g.keep_id
    RETURNING d.id
)
DELETE FROM dead_letters d
USING grouped g
WHERE d.event_source = g.event_source AND d.event_id = g.event_id
  AND coalesce(d.error_dest, '') = g.dest AND d.id <> g.keep_id;

DROP INDEX dead_letters_pending;
CREATE UNIQUE INDEX dead_letters_event
    ON dead_letters (event_source, event_id, (coalesce(error_dest, '')));
CREATE INDEX dead_letters_failed_at ON dead_letters (failed_at);
