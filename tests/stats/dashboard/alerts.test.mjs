// alerts.js: the alerts panel's words for an alert and its changes.

import assert from "node:assert/strict";
import { test } from "node:test";

import { labelsText, transitionText } from "../../../src/modelstats/stats/dashboard/alerts.js";

test("the labels that tell two alerts of one rule and series apart", () => {
  const own = { alertname: "R", model: "M", version: "v1", metric: "m", severity: "critical" };
  assert.equal(labelsText({ ...own, env: "prod" }), "{env=prod}");
  assert.equal(labelsText({ ...own, region: "eu", env: "staging" }), "{env=staging, region=eu}");
  assert.equal(labelsText(own), ""); // nothing beyond what the line shows already
  assert.equal(labelsText(undefined), "");
});

test("a change is named by its kind, the API's word", () => {
  const change = (kind, from, to) => ({ kind, from, to });
  // The series' state goes back to inactive when its alert resolves: the panel says resolved.
  assert.equal(transitionText(change("resolved", "firing", "inactive")), "firing → resolved");
  assert.equal(transitionText(change("firing", "pending", "firing")), "pending → firing");
  assert.equal(transitionText(change("pending", "inactive", "pending")), "inactive → pending");
  assert.equal(transitionText(change("inactive", "pending", "inactive")), "pending → inactive");
  const reminder = change("repeat", "firing", "firing");
  assert.equal(transitionText(reminder), "still firing (notified again)");
});
