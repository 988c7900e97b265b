// accuracy.js: the provisional windows, merged into the spans the charts hatch.

import assert from "node:assert/strict";
import { test } from "node:test";

import { provisionalSpans } from "../../../src/modelstats/stats/dashboard/accuracy.js";

test("neighbouring provisional cells make one span, a settled one or a gap breaks it", () => {
  const at = (minute) => `2026-01-02T10:${String(minute).padStart(2, "0")}:00Z`;
  const seconds = (minute) => Date.parse(at(minute)) / 1000;
  const cells = (open) =>
    [0, 5, 10, 15, 25, 30].map((m, i) => ({ time: at(m), provisional: open[i] }));
  // A cell of two windows with one provisional counts; the window at 20 is missing.
  const answer = { cell_seconds: 300, cells: cells([0, 1, 2, 0, 1, 1]) };
  assert.deepEqual(provisionalSpans(answer), [
    [seconds(5), seconds(15)],
    [seconds(25), seconds(35)],
  ]);
  assert.deepEqual(provisionalSpans({ cell_seconds: 300, cells: cells([0, 0, 0, 0, 0, 0]) }), []);
});
