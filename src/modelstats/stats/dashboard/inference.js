// The inference part of a monitored version's view: its drift strip and its accuracy with the
// label coverage, from /drift and /accuracy over the range the page shows.

import * as api from "./api.js";
import { accuracyCharts } from "./accuracy.js";
import { driftStrip } from "./strip.js";

// A version the etl's inference job writes figures for (its series carry source=inference).
export function isMonitored(entry) {
  return Boolean(entry?.labels?.source?.includes("inference"));
}

function path(kind, model, version) {
  return `${kind}/${encodeURIComponent(model)}/${encodeURIComponent(version)}`;
}

// query: the range's [name, value] pairs; horizon: the view's label horizon, or null.
export function fetchInference(model, version, query, horizon) {
  return Promise.all([
    api.get(path("drift", model, version), query),
    api.get(path("accuracy", model, version), [...query, ["horizon", horizon]]),
  ]);
}

function note(text) {
  const node = document.createElement("p");
  node.className = "quiet";
  node.textContent = text;
  return node;
}

function draw(places, drift, accuracy, range, onZoom) {
  if (drift.cells.length) {
    places.drift.replaceChildren(driftStrip(drift, range));
  } else {
    places.drift.replaceChildren(note("no profiled window in this range"));
  }
  if (!accuracy.metrics.length) {
    const why = accuracy.cells.length
      ? "no label has come for the windows of this range yet"
      : "no labels in this range (send them with Reporter.label or modelstats labels load)";
    places.accuracy.replaceChildren(note(why));
    return null;
  }
  const charts = accuracyCharts({ answer: accuracy, ...range, onZoom });
  places.accuracy.replaceChildren(charts.figure);
  charts.resize();
  return charts;
}

// The part of the page that shows them. places: {drift, accuracy} elements; onZoom(from, to)
// as the other charts take it. `show` takes fetchInference's settled result.
export function inferencePart(places, onZoom) {
  let charts = null;
  return {
    show(settled) {
      charts?.destroy();
      charts = null;
      if (settled.status === "rejected") {
        places.drift.replaceChildren(note(settled.reason.message));
        places.accuracy.replaceChildren();
        return;
      }
      const [drift, accuracy] = settled.value;
      const range = {
        since: Date.parse(drift.since) / 1000,
        until: Date.parse(drift.until) / 1000,
      };
      charts = draw(places, drift, accuracy, range, onZoom);
    },
    resize: () => charts?.resize(),
  };
}
