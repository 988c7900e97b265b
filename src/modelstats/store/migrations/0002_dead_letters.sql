-- Events whose delivery failed for good, as the dead-letter sink received them.
CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    event_source    text        NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    error_dest      text,
    error_code      integer,
    error_data      text,
    attributes      jsonb       NOT NULL,
    data            bytea,
    replayed_at     timestamptz
);
-- A redelivery to the sink stores nothing new until the letter has been replayed; the same
-- event failing at two subscribers is two letters.
CREATE UNIQUE INDEX dead_letters_pending
    ON dead_letters (event_source, event_id, (coalesce(error_dest, '')))
    WHERE replayed_at IS NULL;
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
