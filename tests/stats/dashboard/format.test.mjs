// format.js: numbers, units, times and durations as the dashboard shows them.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  axisLabel,
  clock,
  duration,
  exact,
  fmt,
  percent,
  rfc3339,
  signed,
  unitOf,
  utc,
  whole,
  withUnit,
} from "../../../src/modelstats/stats/dashboard/format.js";

test("numbers show four significant digits, tiny and huge ones in exponent form", () => {
  assert.equal(fmt(0.123456), "0.1235");
  assert.equal(fmt(12345.678), "12,350");
  assert.equal(fmt(0), "0");
  assert.equal(fmt(0.00001234), "1.234e-5");
  assert.equal(fmt(123456789), "1.235e+8");
  assert.equal(fmt(null), "–");
  assert.equal(fmt(undefined), "–");
});

test("exact values are shown as they came", () => {
  assert.equal(exact(0.1 + 0.2), "0.30000000000000004");
  assert.equal(exact(null), "–");
});

test("differences carry their sign, relative changes a percent", () => {
  assert.equal(signed(0.5), "+0.5");
  assert.equal(signed(-0.5), "-0.5");
  assert.equal(signed(0), "0");
  assert.equal(percent(0.1234), "+12.34%");
  assert.equal(percent(-0.5), "-50%");
  assert.equal(percent(null), "");
});

test("a metric's unit comes from its name", () => {
  assert.equal(unitOf("inference_time"), "ms");
  assert.equal(unitOf("latency_ms"), "ms");
  assert.equal(unitOf("queue_seconds"), "s");
  assert.equal(unitOf("payload_bytes"), "B");
  assert.equal(unitOf("gpu_pct"), "%");
  assert.equal(unitOf("prediction_accuracy"), "");
  assert.equal(withUnit("12", "ms"), "12 ms");
  assert.equal(withUnit("12", ""), "12");
});

test("times are UTC, seconds only when they are not zero", () => {
  assert.equal(utc(new Date("2026-11-29T22:14:00Z")), "2026-11-29 22:14 UTC");
  assert.equal(utc(new Date("2026-01-02T03:04:05Z")), "2026-01-02 03:04:05 UTC");
  assert.equal(rfc3339(new Date("2026-01-02T03:04:05.678Z")), "2026-01-02T03:04:05Z");
});

test("the page's clock is UTC, 24 hours, to the second", () => {
  assert.equal(clock(new Date("2026-12-06T19:04:05Z")), "19:04:05 UTC");
  assert.equal(clock(new Date("2026-12-06T00:00:00.900Z")), "00:00:00 UTC");
});

test("axis labels: the date under the first label and at midnight, days alone", () => {
  const at = (text) => new Date(text);
  assert.equal(axisLabel(at("2026-12-06T14:00:00Z"), 3600, true), "14:00\nDec 6");
  assert.equal(axisLabel(at("2026-12-06T15:00:00Z"), 3600, false), "15:00");
  assert.equal(axisLabel(at("2026-12-07T00:00:00Z"), 3600, false), "00:00\nDec 7");
  assert.equal(axisLabel(at("2026-12-07T00:00:00Z"), 86400, false), "Dec 7");
});

test("durations in the largest whole unit", () => {
  assert.equal(duration(86400 * 2), "2d");
  assert.equal(duration(7200), "2h");
  assert.equal(duration(300), "5m");
  assert.equal(duration(90), "90s");
  assert.equal(duration(3660), "61m");
});

test("counts are shown in full", () => {
  assert.equal(whole(44730), "44,730");
  assert.equal(whole(12), "12");
  assert.equal(whole(null), "–");
});
