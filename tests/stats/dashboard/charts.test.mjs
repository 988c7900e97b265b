// charts.js: where an alert band's label goes (the rest of the module draws with uPlot).

import assert from "node:assert/strict";
import { test } from "node:test";

import { labelSpan } from "../../../src/modelstats/stats/dashboard/charts.js";

test("a label is as wide as its name, whatever the band's width", () => {
  // A band of 30 px in the left half: the 126 px label starts at its left edge.
  assert.deepEqual(labelSpan(100, 130, 126, 600, []), [100, 226]);
});

test("a band in the right half has its label run back from its right edge", () => {
  assert.deepEqual(labelSpan(560, 600, 126, 600, []), [474, 600]);
  // Wider than the room left of the band: it stays inside the plot.
  assert.deepEqual(labelSpan(350, 400, 500, 600, []), [0, 500]);
});

test("a band at the left edge keeps its label inside the plot", () => {
  assert.deepEqual(labelSpan(0, 4, 126, 600, []), [0, 126]);
  assert.deepEqual(labelSpan(100, 110, 560, 600, []), [40, 600]);
});

test("a label that would cover another is left out", () => {
  const taken = [[100, 226]];
  assert.equal(labelSpan(150, 160, 126, 600, taken), null);
  assert.deepEqual(labelSpan(226, 236, 50, 600, taken), [226, 276]); // touching is not covering
});
