// view.js: the view the page shows, read from and written to its URL.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DEFAULT_RANGE,
  REFRESH_DEFAULT_SECONDS,
  REFRESH_MIN_SECONDS,
  apiQuery,
  chartedMetrics,
  fittingRange,
  fromUtcInput,
  rangeQuery,
  readView,
  settle,
  toUtcInput,
  viewQuery,
} from "../../../src/modelstats/stats/dashboard/view.js";

test("a URL's view: its choices, labels, metrics and refresh", () => {
  const view = readView("?model=M&version=v2&range=6h&label.env=prod&metric=a,b&refresh=10s");
  assert.equal(view.model, "M");
  assert.equal(view.version, "v2");
  assert.equal(view.baseline, null);
  assert.equal(view.range, "6h");
  assert.deepEqual(view.labels, [["env", "prod"]]);
  assert.deepEqual(view.metrics, ["a", "b"]);
  assert.equal(view.refresh, true);
  assert.equal(view.refreshSeconds, 10);
});

test("a custom range needs both ends", () => {
  const both = readView("?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z");
  assert.equal(both.from, "2026-01-01T00:00:00Z");
  assert.equal(both.to, "2026-01-02T00:00:00Z");
  const half = readView("?from=2026-01-01T00:00:00Z");
  assert.equal(half.from, null);
  assert.equal(half.to, null);
});

test("refresh: off, at least the minimum, else the default", () => {
  assert.equal(readView("?refresh=off").refresh, false);
  assert.equal(readView("?refresh=1s").refreshSeconds, REFRESH_MIN_SECONDS);
  assert.equal(readView("?refresh=2m").refreshSeconds, 120);
  assert.equal(readView("?refresh=soon").refreshSeconds, REFRESH_DEFAULT_SECONDS);
  assert.equal(readView("").refresh, true);
});

test("writing a view and reading it back gives the same view", () => {
  const search = "?model=M&version=v2&baseline=v1&range=7d&label.env=prod&metric=a&refresh=off";
  const view = readView(search);
  assert.deepEqual(readView(`?${viewQuery(view)}`), view);
  const custom = readView("?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&refresh=1m");
  const query = viewQuery(custom);
  assert.equal(query.get("range"), null); // a custom range replaces the named one
  assert.equal(query.get("refresh"), "1m");
  assert.deepEqual(readView(`?${query}`), custom);
});

const NOW = Date.parse("2026-01-03T00:00:00Z");
const minutesAgo = (minutes) => new Date(NOW - minutes * 60_000).toISOString();

function catalogue() {
  const versions = (entries) => new Map(entries.map((e) => [e.version, e]));
  return new Map([
    [
      "Mistral",
      versions([
        { version: "v1", first_seen: minutesAgo(9000), last_seen: "2026-01-01T00:00:00Z" },
        { version: "v2", first_seen: minutesAgo(20), last_seen: "2026-01-03T00:00:00Z" },
      ]),
    ],
    ["Llama", versions([{ version: "v9", last_seen: "2026-01-02T00:00:00Z" }])],
  ]);
}

test("settle: no model is the overview; a model gets its newest version, no baseline", () => {
  const view = readView("");
  settle(view, catalogue(), NOW);
  assert.deepEqual([view.model, view.version, view.baseline], [null, null, null]);
  assert.equal(view.range, DEFAULT_RANGE);
  const model = readView("?model=Mistral");
  settle(model, catalogue(), NOW);
  assert.deepEqual([model.model, model.version, model.baseline], ["Mistral", "v2", null]);
  const chosen = readView("?model=Mistral&version=v1&baseline=v2");
  settle(chosen, catalogue(), NOW);
  assert.deepEqual([chosen.model, chosen.version, chosen.baseline], ["Mistral", "v1", "v2"]);
});

test("settle: what the catalogue no longer has is replaced", () => {
  const view = readView("?model=Gone&version=v7&baseline=v8");
  settle(view, catalogue(), NOW);
  assert.deepEqual([view.model, view.version, view.baseline], [null, null, null]);
  const version = readView("?model=Mistral&version=v7&baseline=v8");
  settle(version, catalogue(), NOW);
  assert.deepEqual([version.model, version.version, version.baseline], ["Mistral", "v2", null]);
  const same = readView("?model=Mistral&version=v2&baseline=v2");
  settle(same, catalogue(), NOW);
  assert.equal(same.baseline, null); // a version is not its own baseline
});

test("the API query: the window, automatic buckets, metrics and labels", () => {
  const named = apiQuery(readView("?range=6h&metric=a,b&label.env=prod"));
  assert.deepEqual(named, [
    ["since", "6h"],
    ["bucket", "auto"],
    ["metric", "a,b"],
    ["label.env", "prod"],
  ]);
  const custom = apiQuery(readView("?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"));
  assert.deepEqual(custom.slice(0, 2), [
    ["since", "2026-01-01T00:00:00Z"],
    ["until", "2026-01-02T00:00:00Z"],
  ]);
});

test("the range alone, for /drift, /accuracy and /overview", () => {
  assert.deepEqual(rangeQuery(readView("?range=6h&metric=a")), [["since", "6h"]]);
  assert.deepEqual(rangeQuery(readView("?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z")), [
    ["since", "2026-01-01T00:00:00Z"],
    ["until", "2026-01-02T00:00:00Z"],
  ]);
});

test("a label horizon in the URL is kept for /accuracy and in links", () => {
  const view = readView("?model=M&horizon=30m");
  assert.equal(view.horizon, "30m");
  assert.equal(viewQuery(view).get("horizon"), "30m");
  assert.equal(readView("").horizon, null);
});

test("the custom range's fields: UTC as YYYY-MM-DD HH:MM, RFC 3339 in the URL", () => {
  assert.equal(fromUtcInput("2026-01-02 03:04"), "2026-01-02T03:04:00Z");
  assert.equal(fromUtcInput(" 2026-01-02T03:04:05Z "), "2026-01-02T03:04:05Z");
  assert.equal(fromUtcInput("yesterday"), null);
  assert.equal(fromUtcInput("2026-13-40 25:00"), null);
  assert.equal(toUtcInput("2026-01-02T03:04:05Z"), "2026-01-02 03:04");
  assert.equal(toUtcInput(null), "");
});

test("without a range in the URL: one that holds a new version's samples, else a day", () => {
  assert.equal(readView("").range, null);
  assert.equal(readView("?range=2h").range, null); // not one of the buttons
  const young = readView("?model=Mistral&version=v2"); // began reporting 20 minutes ago
  settle(young, catalogue(), NOW);
  assert.equal(young.range, "1h");
  assert.equal(readView(`?${viewQuery(young)}`).range, "1h"); // the link keeps it
  const old = readView("?model=Mistral&version=v1"); // for days
  settle(old, catalogue(), NOW);
  assert.equal(old.range, DEFAULT_RANGE);
  const chosen = readView("?model=Mistral&version=v2&range=7d");
  settle(chosen, catalogue(), NOW);
  assert.equal(chosen.range, "7d"); // the URL's choice stands
});

test("the fitting range is the shortest that holds the version's first sample", () => {
  const since = (minutes) => ({ first_seen: minutesAgo(minutes) });
  assert.equal(fittingRange(since(3), NOW), "15m");
  assert.equal(fittingRange(since(15), NOW), "15m");
  assert.equal(fittingRange(since(16), NOW), "1h");
  assert.equal(fittingRange(since(300), NOW), "6h");
  assert.equal(fittingRange(since(1000), NOW), "24h");
  assert.equal(fittingRange(since(100000), NOW), DEFAULT_RANGE); // never longer than a day
  assert.equal(fittingRange(undefined, NOW), DEFAULT_RANGE);
});

test("every ticked metric gets a chart, said to be empty when it has no samples", () => {
  const known = ["drift", "latency", "accuracy"];
  const all = readView("");
  assert.deepEqual(chartedMetrics(all, known, ["drift"]), [
    { metric: "accuracy", sampled: false },
    { metric: "drift", sampled: true },
    { metric: "latency", sampled: false },
  ]);
  const ticked = readView("?metric=latency,drift");
  assert.deepEqual(chartedMetrics(ticked, known, ["drift"]), [
    { metric: "drift", sampled: true },
    { metric: "latency", sampled: false },
  ]);
  // Nothing at all in the range: the page says where the samples are instead.
  assert.deepEqual(chartedMetrics(all, known, []), []);
});
