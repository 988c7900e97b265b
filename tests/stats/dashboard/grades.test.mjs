// grades.js: how the dashboard reads drift figures, windows and accuracy cells.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CLOSE,
  accuracyState,
  accuracySummary,
  accuracyText,
  columnCell,
  columnText,
  driftSummary,
  figureText,
  grade,
  severity,
  windowState,
  windowText,
} from "../../../src/modelstats/stats/dashboard/grades.js";

// As /drift answers them (core/drift_methods.py).
const METHODS = {
  ks: { kind: "p-value", threshold: 0.05 },
  psi: { kind: "distance", threshold: 0.1 },
};
const TIME = "2026-01-02T10:05:00Z";
const one = (method, figure, drifted) => ({
  time: TIME,
  windows: 1,
  method,
  judged: 1,
  drifted,
  figure,
});

test("a p-value and a distance at their threshold are equally severe", () => {
  assert.equal(severity(0.05, "ks", METHODS), 1);
  assert.equal(severity(0.1, "psi", METHODS), 1);
  assert.equal(severity(0.005, "ks", METHODS), severity(1.0, "psi", METHODS)); // 10x past
  assert.ok(severity(0.5, "ks", METHODS) < CLOSE); // p = 0.5: nothing moved
  assert.equal(severity(0, "ks", METHODS), Infinity);
  assert.equal(severity(0.2, "unknown", METHODS), null);
  assert.equal(severity(null, "ks", METHODS), null);
});

test("drifted, close and fine read alike across methods, the verdict deciding", () => {
  assert.deepEqual(grade(one("ks", 0.04, 1), METHODS), { state: "drifted", level: 1 });
  assert.deepEqual(grade(one("psi", 0.12, 1), METHODS), { state: "drifted", level: 1 });
  assert.deepEqual(grade(one("ks", 0.01, 1), METHODS), { state: "drifted", level: 2 });
  assert.deepEqual(grade(one("psi", 0.5, 1), METHODS), { state: "drifted", level: 2 });
  assert.deepEqual(grade(one("ks", 1e-6, 1), METHODS), { state: "drifted", level: 3 });
  assert.deepEqual(grade(one("psi", 1.5, 1), METHODS), { state: "drifted", level: 3 });
  assert.equal(grade(one("ks", 0.08, 0), METHODS).state, "close");
  assert.equal(grade(one("psi", 0.06, 0), METHODS).state, "close");
  assert.equal(grade(one("ks", 0.3, 0), METHODS).state, "fine");
  assert.equal(grade(one("psi", 0.01, 0), METHODS).state, "fine");
  // A monitor's own threshold: past the default yet not drifted is close, never drifted.
  assert.equal(grade(one("psi", 0.15, 0), METHODS).state, "close");
  // Drifted by a stricter threshold than the default still says drifted.
  assert.deepEqual(grade(one("psi", 0.08, 1), METHODS), { state: "drifted", level: 1 });
  // A cell of several windows drifted when any of them did.
  const several = { time: TIME, windows: 6, method: "ks", judged: 6, drifted: 2, figure: 0.001 };
  assert.deepEqual(grade(several, METHODS), { state: "drifted", level: 3 });
});

test("a cell's words: verdict, method, figure and threshold", () => {
  assert.equal(figureText(0.001, "ks", METHODS), "p-value 0.001 (ks: drifted below 0.05)");
  assert.equal(figureText(0.23, "psi", METHODS), "distance 0.23 (psi: drifted from 0.1)");
  assert.equal(
    columnText("amount", one("ks", 0.001, 1), METHODS, 300),
    "amount, 2026-01-02 10:05 UTC: drifted; p-value 0.001 (ks: drifted below 0.05)",
  );
  const several = { time: TIME, windows: 3, method: "psi", judged: 3, drifted: 1, figure: 0.4 };
  assert.equal(
    columnText("country", several, METHODS, 900),
    "country, 2026-01-02 10:05 UTC + 15 min: 1 of 3 windows drifted; the most drifted:" +
      " distance 0.4 (psi: drifted from 0.1)",
  );
});

const window = (fields) => ({
  time: TIME,
  windows: 1,
  rows: 600,
  no_reference: 0,
  rows_short: 0,
  judged: 1,
  drift_share: 0.25,
  drift_share_max: 0.25,
  dataset_drift: 0,
  ...fields,
});

test("a window without a verdict says why; a judged one its share and dataset verdict", () => {
  const none = window({ no_reference: 1, judged: 0, drift_share: null });
  assert.equal(windowState(none), "no-reference");
  assert.equal(windowText(none, 300), "2026-01-02 10:05 UTC: no reference yet, 600 rows");
  const short = window({ rows_short: 1, judged: 0, drift_share: null, rows: 40 });
  assert.equal(windowState(short), "rows-short");
  assert.equal(windowText(short, 300), "2026-01-02 10:05 UTC: too few rows, 40 rows");
  assert.equal(windowState(window({})), "judged");
  assert.equal(
    windowText(window({}), 300),
    "2026-01-02 10:05 UTC: drift share 0.25, no dataset drift, 600 rows",
  );
  const drifted = window({ drift_share: 0.75, dataset_drift: 1 });
  assert.equal(windowState(drifted), "dataset-drift");
  const grouped = window({ windows: 3, judged: 2, no_reference: 1, dataset_drift: 1 });
  assert.equal(windowState(grouped), "dataset-drift");
  assert.match(
    windowText(grouped, 900),
    /dataset drifted in 1 of 3 windows.*1 window\(s\) without a verdict$/,
  );
});

test("an accuracy cell: settled, provisional while labels may come, or unlabelled", () => {
  const cell = (values, provisional, coverage) => ({
    time: TIME,
    windows: 1,
    label_coverage: coverage,
    label_coverage_min: coverage,
    provisional,
    values,
  });
  const metric = "prediction_accuracy";
  assert.equal(accuracyState(cell({ [metric]: 0.9 }, 0, 1), metric), "settled");
  assert.equal(accuracyState(cell({ [metric]: 0.9 }, 1, 0.4), metric), "provisional");
  assert.equal(accuracyState(cell({}, 1, 0), metric), "unlabelled");
  assert.equal(
    accuracyText(cell({ [metric]: 0.9 }, 1, 0.4), metric, 300),
    "2026-01-02 10:05 UTC: prediction_accuracy 0.9, label coverage 0.4; provisional:" +
      " labels may still come",
  );
  assert.equal(
    accuracyText(cell({}, 1, 0), metric, 300),
    "2026-01-02 10:05 UTC: no label yet, label coverage 0",
  );
});

test("the overview's words for the last drift and accuracy", () => {
  assert.equal(driftSummary(null), "–");
  assert.equal(driftSummary({ drift_share: 0.5, dataset_drift: 1 }), "0.5 (dataset drift)");
  assert.equal(driftSummary({ drift_share: 0, dataset_drift: 0 }), "0 (no dataset drift)");
  const job = { metric: "prediction_accuracy", value: 0.93, label_coverage: 0.8 };
  assert.equal(accuracySummary(job), "0.93, coverage 0.8");
  const server = { metric: "prediction_accuracy", value: 0.88, label_coverage: null };
  assert.equal(accuracySummary(server), "0.88");
  assert.equal(
    accuracySummary({ metric: "mae", value: 2.5, label_coverage: 1 }),
    "mae 2.5, coverage 1",
  );
});

test("a column's cell is read from its arrays, aligned with the answer's cells", () => {
  const answer = {
    cells: [
      { time: "2026-01-02T10:00:00Z", windows: 2 },
      { time: "2026-01-02T10:10:00Z", windows: 2 },
    ],
  };
  const column = {
    feature: "amount",
    cells: { method: [null, "ks"], judged: [0, 2], drifted: [0, 1], figure: [null, 0.01] },
  };
  assert.equal(columnCell(answer, column, 0), null); // not judged: no reference, too few rows
  assert.deepEqual(columnCell(answer, column, 1), {
    time: "2026-01-02T10:10:00Z",
    windows: 2,
    method: "ks",
    judged: 2,
    drifted: 1,
    figure: 0.01,
  });
});
