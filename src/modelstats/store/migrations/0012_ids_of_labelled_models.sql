-- Only the predictions of models that get labels are indexed by id.
--
-- Labels find their row through the hash index on id (0010). Keeping that index was half of a
-- million-row tick, and the share grows with the day: every tick's ids land all over an index
-- that already holds the day's (1.4 s into an empty partition, 2.4-3.2 s into one holding two
-- or three million rows, most of it index upkeep and its WAL). Many models never get labels:
-- their predictions are kept (a first label may still come) but left out of the index, which
-- then costs them nothing. The inference job marks a model `labelled` at the first run that
-- sees a label for it; from then on its predictions are written `indexed`, and those it kept
-- before are set `indexed` in that run, once.
ALTER TABLE inference_models ADD COLUMN labelled boolean NOT NULL DEFAULT false;
UPDATE inference_models m SET labelled = true
WHERE EXISTS (SELECT 1 FROM inference_labels l WHERE l.model = m.model);

-- Rows kept before this migration stay in the index, as they were.
ALTER TABLE inference_predictions ADD COLUMN indexed boolean NOT NULL DEFAULT true;
ALTER TABLE inference_predictions ALTER COLUMN indexed DROP DEFAULT;

DROP INDEX inference_predictions_id;
CREATE INDEX inference_predictions_id ON inference_predictions USING hash (id) WHERE indexed;
