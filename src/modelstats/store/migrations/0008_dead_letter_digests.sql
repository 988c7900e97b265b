-- The sink keeps what ingest refuses, whatever its size up to the body limit. One letter per
-- event and destination was enforced by an index on the text of (source, id, destination):
-- a 6 KB id broke it ("index row size exceeds btree maximum"), the sink answered 503, and the
-- broker retried and spooled the event for ever. The same key, as digests of the values,
-- has a fixed size whatever the values.

-- convert_to is STABLE because it depends on the database's encoding, which never changes
-- for a database: the digest of a text is the same for as long as the index lives.
CREATE FUNCTION dead_letter_digest(value text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT sha256(convert_to(value, 'UTF8')) $$;

DROP INDEX dead_letters_event;
CREATE UNIQUE INDEX dead_letters_event ON dead_letters (
    dead_letter_digest(event_source),
    dead_letter_digest(event_id),
    dead_letter_digest(coalesce(error_dest, ''))
);
