-- When each block of logged rows arrived. A window whose time has passed may still be
-- receiving rows: a replay or backfill of past traffic, or the responses of its requests,
-- which reach ingest through another Trigger. The inference job holds such a window until
-- its blocks stop arriving (etl/inference/job.py), instead of profiling the first few rows
-- and counting the rest as late. Blocks kept from before this migration take its time.
ALTER TABLE inference_blocks ADD COLUMN received_at timestamptz NOT NULL DEFAULT now();
