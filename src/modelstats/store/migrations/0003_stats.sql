-- Stats: daily rollups per series, computed lazily by the stats function for closed days.
--
-- Ingest is untouched: nothing here runs when samples arrive for an open day. When stats rolls
-- up a day it first "seals" that day's partition with a row trigger; a late sample for a sealed
-- day (a replayed dead letter, a backfill) fires it, and the trigger forgets the day's rollups,
-- which are recomputed on the next query. Only late rows pay for the trigger.

CREATE TABLE stats_daily (
    series_id  integer          NOT NULL,
    day        date             NOT NULL,
    -- The partition the rollup was computed from: a day dropped by retention and created again
    -- has a new partition, so rollups of the old one no longer match and are ignored.
    part       oid              NOT NULL,
    n          bigint           NOT NULL,
    mean       double precision,
    -- Sum of squared deviations from the mean (combined across days with Chan's formula).
    m2         double precision,
    lo         double precision,
    hi         double precision,
    -- A log-bucket sketch of the values: sorted bucket keys (stats_sketch_key) and their counts.
    keys       integer[]        NOT NULL DEFAULT '{}',
    counts     integer[]        NOT NULL DEFAULT '{}',
    computed_at timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (series_id, day)
);
CREATE INDEX stats_daily_part ON stats_daily (part);

-- The bucket of a value in a sketch with relative accuracy 0.5%: gamma = 1.005 / 0.995, a
-- positive value v lies in (gamma^(i-1), gamma^i] with i = ceil(ln v / ln gamma). Keys keep the
-- order of the values: 0 is zero, 100000 + i a positive value, -(100000 + i) a negative one.
-- Every finite double fits (|i| < 75000). Not STRICT, so that PostgreSQL inlines it.
CREATE FUNCTION stats_sketch_key(v double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN v > 0 THEN 100000 + ceil(ln(v) / ln(1.005::float8 / 0.995::float8))::integer
        WHEN v < 0 THEN -(100000 + ceil(ln(-v) / ln(1.005::float8 / 0.995::float8))::integer)
        ELSE 0
    END
$$;

-- The trigger of a sealed partition: the first late row of a transaction forgets the rollups.
-- SECURITY DEFINER: a writer (ingest) needs no privilege on stats_daily for a late sample.
CREATE FUNCTION stats_daily_forget() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    flag text := 'modelstats.stats_forgot_' || TG_RELID::bigint;
BEGIN
    IF current_setting(flag, true) IS DISTINCT FROM '1' THEN
        DELETE FROM stats_daily WHERE part = TG_RELID;
        PERFORM set_config(flag, '1', true);
    END IF;
    RETURN NULL;
END
$$;

-- Lock one day's partition against inserts for the rest of the transaction, sealing it first
-- if needed. Returns the partition, or NULL when the day has none. While the lock is held, no
-- sample can land in the day unseen: a rollup computed under it is complete, and any later
-- sample fires the trigger. Sealing needs the TRIGGER privilege on the partition and the lock
-- UPDATE: a role without them gets an error, and stats reads raw samples instead.
CREATE FUNCTION stats_lock_day(day date) RETURNS oid
LANGUAGE plpgsql AS $$
DECLARE
    part regclass := to_regclass('samples_' || to_char(day, 'YYYYMMDD'));
BEGIN
    IF part IS NULL THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = part AND tgname = 'stats_daily_forget') THEN
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
    ELSE
        -- Self-conflicting: two stats processes sealing the same day take turns.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', part);
        IF NOT EXISTS (
            SELECT 1 FROM pg_trigger WHERE tgrelid = part AND tgname = 'stats_daily_forget'
        ) THEN
            EXECUTE format(
                'CREATE TRIGGER stats_daily_forget AFTER INSERT ON %s'
                ' FOR EACH ROW EXECUTE FUNCTION stats_daily_forget()', part);
        END IF;
    END IF;
    RETURN part;
END
$$;
