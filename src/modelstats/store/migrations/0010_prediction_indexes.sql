-- Keeping a tick's predictions cost more in index upkeep than in rows: for a million rows,
-- COPY took 0.45 s into the bare table and 2.7 s with the two btrees of 0009. Both lookups
-- are served as well by cheaper kinds:
-- - labels find their row by id, always with equality: a hash index holds a 4-byte code per
--   row, not the text of (model, id), and the join still checks the model;
-- - a window's rows are found by window_start, and rows are written window after window, so
--   a block range summary (BRIN) points at them; it costs almost nothing to keep.
-- Together they took the same COPY to 1.4 s.
DROP INDEX inference_predictions_id;
DROP INDEX inference_predictions_window;
CREATE INDEX inference_predictions_id ON inference_predictions USING hash (id);
CREATE INDEX inference_predictions_window ON inference_predictions USING brin (window_start);
