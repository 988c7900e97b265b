-- The ETL's state: per source (the reply event's source, e.g. /modelstats/etl/jsonl/var/log/x),
-- what has been read and what has been reported, so that each log record counts once.

-- The watermark of a source. Its row is locked (SELECT ... FOR UPDATE) for the whole run, so
-- two runs of the same job never read the same bytes.
CREATE TABLE etl_sources (
    source         text PRIMARY KEY,
    -- The newest record time seen: with now, it sets the horizon that closes windows.
    newest_time    timestamptz,
    -- Every window that ends at or before this has been reported; older records are late.
    reported_until timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Where reading stopped in each file: identity (device, inode, a hash of its first bytes)
-- and the offset of the first byte not consumed (always the start of a line).
CREATE TABLE etl_files (
    source      text          NOT NULL REFERENCES etl_sources (source) ON DELETE CASCADE,
    device      numeric(20)   NOT NULL,
    inode       numeric(20)   NOT NULL,
    path        text          NOT NULL,
    read_offset bigint        NOT NULL CHECK (read_offset >= 0),
    head_length integer       NOT NULL,
    head_sha256 bytea         NOT NULL,
    seen_at     timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (source, device, inode)
);

-- Records already read whose window is still open: they are reported when it closes, and
-- deleted in the same transaction.
CREATE TABLE etl_pending (
    source     text             NOT NULL REFERENCES etl_sources (source) ON DELETE CASCADE,
    model      text             NOT NULL,
    version    text             NOT NULL,
    time       timestamptz      NOT NULL,
    correct    boolean,
    latency_ms double precision NOT NULL,
    score      double precision
);
CREATE INDEX etl_pending_source_time ON etl_pending (source, time);

-- The drift reference per model and version: decile edges and the reference share of each
-- bin. version '' holds a model-wide reference (from a reference file, for versions it lacks).
-- origin: 'window:<start>' (the first window seen) or 'file:<path>#<sha256 prefix>'.
CREATE TABLE etl_references (
    source     text               NOT NULL REFERENCES etl_sources (source) ON DELETE CASCADE,
    model      text               NOT NULL,
    version    text               NOT NULL,
    origin     text               NOT NULL,
    edges      double precision[] NOT NULL,
    shares     double precision[] NOT NULL,
    size       integer            NOT NULL,
    created_at timestamptz        NOT NULL DEFAULT now(),
    PRIMARY KEY (source, model, version)
);

-- The answer given to each ping, so a redelivered ping gets the same reply instead of a new
-- run (whose reports would otherwise be lost with the first answer). Kept one day.
CREATE TABLE etl_replies (
    source      text        NOT NULL REFERENCES etl_sources (source) ON DELETE CASCADE,
    ping_source text        NOT NULL,
    ping_id     text        NOT NULL,
    event_id    text,       -- NULL: the run answered 204 (nothing new)
    reports     jsonb,
    time        timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, ping_source, ping_id)
);
CREATE INDEX etl_replies_created_at ON etl_replies (created_at);
