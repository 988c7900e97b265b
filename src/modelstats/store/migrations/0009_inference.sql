-- Logged inference traffic (kept by ingest) and what the etl's inference job keeps of it.

-- KServe's logger sends a request and its response with the same source and id, so an event is
-- identified by (source, id, type) here; metric events, the only type so far, keep their key.
ALTER TABLE ingest_events ADD COLUMN type text NOT NULL DEFAULT 'modelstats.metric.reported';
ALTER TABLE ingest_events DROP CONSTRAINT ingest_events_pkey;
ALTER TABLE ingest_events ADD PRIMARY KEY (source, id, type);

-- Rows as the loggers sent them, column by column (core/columns.py), in blocks: one logged
-- event, or the events of one model and kind that one group commit wrote together. A block's
-- rows lie within one aligned minute (ingest cuts them so), which bounds the window job's reads.
-- Partitioned by day; the inference job drops the days whose windows are all profiled.
CREATE SEQUENCE inference_blocks_seq;
CREATE TABLE inference_blocks (
    seq      bigint      NOT NULL DEFAULT nextval('inference_blocks_seq'),
    model    text        NOT NULL,
    kind     text        NOT NULL CHECK (kind IN ('request', 'response', 'record')),
    time_min timestamptz NOT NULL,
    time_max timestamptz NOT NULL,
    rows     integer     NOT NULL CHECK (rows > 0),
    meta     bytea       NOT NULL,  -- per row: id, time, version (and latency_ms of records)
    features bytea,                 -- requests and records
    outputs  bytea,                 -- responses and records: the predictions per output
    scores   bytea                  -- the scores of outputs that have them
) PARTITION BY RANGE (time_min);
CREATE INDEX inference_blocks_model_time ON inference_blocks (model, time_min);
-- Rows that arrive after their window was profiled are found by what was written since.
CREATE INDEX inference_blocks_seq_index ON inference_blocks (seq);

-- Every model that ever logged a row, and how far its windows are profiled.
CREATE TABLE inference_models (
    model        text PRIMARY KEY,
    -- Every window that ends at or before this has been profiled; NULL: none yet.
    closed_until timestamptz,
    -- The newest block seen by the last run, to count rows that came after their window.
    last_seq     bigint      NOT NULL DEFAULT 0,
    -- The newest label seen by the last run: windows with labels after it are figured again.
    labels_seq   bigint      NOT NULL DEFAULT 0,
    first_seen   timestamptz NOT NULL DEFAULT now()
);

-- A profiled window's columns as mergeable sketches (Apache DataSketches: KLL for numbers,
-- frequent items for text), so a day or a month of windows merges without the rows.
CREATE TABLE inference_profiles (
    model        text        NOT NULL,
    version      text        NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    feature      text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('numeric', 'text')),
    rows         integer     NOT NULL,
    missing      integer     NOT NULL,
    sketch       bytea       NOT NULL,
    -- Numbers: the sum and sum of squares of the present values (a merged standard deviation).
    total        double precision NOT NULL DEFAULT 0,
    squares      double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (model, version, window_start, feature)
);

-- The drift reference of each model and version: an uploaded dataset (`modelstats reference
-- set`), a pinned range of logged traffic, or the first window with enough rows. Kept apart
-- from the logged rows, so retention never takes it. The rows themselves when there are at
-- most 100,000 (drift is then exact); sketches of every column always.
CREATE TABLE inference_references (
    model      text        NOT NULL,
    version    text        NOT NULL,
    -- upload:<file name>#<sha256 prefix>, range:<from>/<to>, first:<window start>
    origin     text        NOT NULL,
    rows       integer     NOT NULL,
    columns    bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, version)
);
CREATE TABLE inference_reference_sketches (
    model    text             NOT NULL,
    version  text             NOT NULL,
    feature  text             NOT NULL,
    kind     text             NOT NULL CHECK (kind IN ('numeric', 'text')),
    count    integer          NOT NULL,  -- present values
    sketch   bytea            NOT NULL,
    total    double precision NOT NULL DEFAULT 0,
    squares  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (model, version, feature),
    FOREIGN KEY (model, version) REFERENCES inference_references ON DELETE CASCADE
);


-- The truth about logged rows, learnt later (modelstats.label.reported): one per model and row
-- id, the latest (by the time it was learnt) winning. A label may come before its row: it waits
-- here for the horizon, then counts as unmatched and goes.
CREATE SEQUENCE inference_labels_seq;
CREATE TABLE inference_labels (
    model       text             NOT NULL,
    id          text             NOT NULL,
    label       text             NOT NULL,  -- as text: numbers as JSON writes them
    value       double precision,           -- as a number, when it is one
    time        timestamptz      NOT NULL,  -- when the truth was learnt
    received_at timestamptz      NOT NULL DEFAULT now(),
    -- Bumped on every change: a run figures again the windows of labels newer than it saw.
    seq         bigint           NOT NULL DEFAULT nextval('inference_labels_seq'),
    PRIMARY KEY (model, id)
);
CREATE INDEX inference_labels_seq_index ON inference_labels (seq);
CREATE INDEX inference_labels_time ON inference_labels (model, time);

-- Each profiled row's prediction, kept for the label horizon: labels join on (model, id), and
-- a window's accuracy is figured from its rows here. Partitioned by the window's day; the
-- inference job drops the days past every monitor's horizon.
CREATE TABLE inference_predictions (
    model        text             NOT NULL,
    id           text             NOT NULL,
    version      text             NOT NULL,
    window_start timestamptz      NOT NULL,
    time         timestamptz      NOT NULL,  -- the request's
    prediction   text,                       -- as text (NULL: no prediction, a lost response)
    value        double precision,           -- as a number, when it is one
    score        double precision
) PARTITION BY RANGE (window_start);
CREATE INDEX inference_predictions_id ON inference_predictions (model, id);
CREATE INDEX inference_predictions_window ON inference_predictions (model, version, window_start);

-- Daily partitions of a table partitioned by day (the two above), named <table>_YYYYMMDD,
-- created on demand and dropped by whole days, as the samples' are (0001_store.sql).
CREATE FUNCTION ensure_daily_partitions(parent text, days date[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date;
    created integer := 0;
    name text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('modelstats.partitions.' || parent));
    FOREACH day IN ARRAY days LOOP
        name := parent || '_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                name, parent, day::timestamp AT TIME ZONE 'UTC',
                (day + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

CREATE FUNCTION drop_daily_partitions_before(parent text, cutoff date) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('modelstats.partitions.' || parent));
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass
          AND c.relname ~ ('^' || parent || '_[0-9]{8}$')
          AND to_date(right(c.relname, 8), 'YYYYMMDD') + 1 <= cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END
$$;
