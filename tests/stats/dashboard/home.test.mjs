// home.js: the overview's words for a version's traffic.

import assert from "node:assert/strict";
import { test } from "node:test";

import { trafficText } from "../../../src/modelstats/stats/dashboard/home.js";

test("a monitored version's traffic is its requests and rows, another's its samples", () => {
  const monitored = { inference: true, requests: 22365, rows: 44730, samples: 9000 };
  assert.equal(trafficText(monitored), "22,365 requests, 44,730 rows"); // in full: counts
  assert.equal(trafficText({ ...monitored, requests: null }), "44,730 rows");
  assert.equal(trafficText({ ...monitored, requests: null, rows: null }), "no traffic");
  assert.equal(
    trafficText({ inference: false, requests: null, rows: null, samples: 71 }),
    "71 samples",
  );
});
