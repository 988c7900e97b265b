-- The store: a dictionary of series and narrow samples partitioned by day.
-- Samples carry no foreign key: it would cost every insert a lookup, and series are never deleted.

CREATE TABLE series (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model      text        NOT NULL,
    version    text        NOT NULL,
    metric     text        NOT NULL,
    labels     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model, version, metric, labels)
);

CREATE TABLE samples (
    series_id integer          NOT NULL,
    time      timestamptz      NOT NULL,
    value     double precision NOT NULL
) PARTITION BY RANGE (time);

-- One series over a time range is the shape of almost every read; INCLUDE makes it index-only.
CREATE INDEX samples_series_time ON samples (series_id, time) INCLUDE (value);

-- One row per delivered event: (source, id) is the CloudEvents identity, so a redelivery
-- conflicts here and stores nothing.
CREATE TABLE ingest_events (
    source      text        NOT NULL,
    id          text        NOT NULL,
    received_at timestamptz NOT NULL,
    samples     integer     NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX ingest_events_received_at ON ingest_events (received_at);

-- Ad-hoc SQL and Grafana's PostgreSQL data source read this.
CREATE VIEW metric_samples AS
SELECT s.time, r.model, r.version, r.metric, s.value, r.labels
FROM samples s
JOIN series r ON r.id = s.series_id;

-- Daily partitions named samples_YYYYMMDD, created on demand by ingest.
CREATE FUNCTION ensure_sample_partitions(days date[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date;
    created integer := 0;
    name text;
BEGIN
    -- Serialise creators: two ingest processes may see the same new day at once.
    PERFORM pg_advisory_xact_lock(hashtext('modelstats.sample_partitions'));
    FOREACH day IN ARRAY days LOOP
        name := 'samples_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF samples FOR VALUES FROM (%L) TO (%L)',
                name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

-- Retention drops whole partitions, never rows.
CREATE FUNCTION drop_sample_partitions_before(cutoff date) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('modelstats.sample_partitions'));
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'samples'::regclass
          AND c.relname ~ '^samples_[0-9]{8}$'
          AND to_date(substr(c.relname, 9), 'YYYYMMDD') + 1 <= cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END
$$;
