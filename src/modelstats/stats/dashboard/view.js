// The view the page shows (model, version, baseline, range, labels, metrics, refresh, label
// horizon), read from and written to the page's URL, so that a link reproduces it. Without a
// model it is the overview of every model, the home page.

import { duration } from "./format.js";

export const RANGES = ["15m", "1h", "6h", "24h", "7d", "30d"];
export const DEFAULT_RANGE = "24h";
// The ranges a view without one may be given (fittingRange): the default, or shorter.
const FITTING_SECONDS = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400 };
export const REFRESH_DEFAULT_SECONDS = 30;
// As Grafana's min_refresh_interval: a shared link cannot make every reader poll the API hard.
export const REFRESH_MIN_SECONDS = 5;

// `refresh=off`, or how often as Grafana writes it (`10s`, `1m`); anything else is the default.
function readRefresh(text) {
  if (text === "off") return { refresh: false, refreshSeconds: REFRESH_DEFAULT_SECONDS };
  const found = /^(\d+)(s|m|h)$/.exec(text || "");
  const seconds = found ? Number(found[1]) * { s: 1, m: 60, h: 3600 }[found[2]] : NaN;
  return {
    refresh: true,
    refreshSeconds: seconds > 0 ? Math.max(seconds, REFRESH_MIN_SECONDS) : REFRESH_DEFAULT_SECONDS,
  };
}

export function readView(search) {
  const query = new URLSearchParams(search);
  const from = query.get("from");
  const to = query.get("to");
  return {
    model: query.get("model"),
    version: query.get("version"),
    baseline: query.get("baseline"),
    range: RANGES.includes(query.get("range")) ? query.get("range") : null, // settle() picks
    from: from && to ? from : null, // a custom range (or a zoom) needs both ends
    to: from && to ? to : null,
    labels: [...query.entries()]
      .filter(([key]) => key.startsWith("label."))
      .map(([key, value]) => [key.slice("label.".length), value]),
    metrics: (query.get("metric") || "").split(",").filter(Boolean),
    horizon: query.get("horizon") || null, // the API checks it and says so
    ...readRefresh(query.get("refresh")),
  };
}

export function viewQuery(view) {
  const query = new URLSearchParams();
  for (const name of ["model", "version", "baseline"]) {
    if (view[name]) query.set(name, view[name]);
  }
  if (view.from) {
    query.set("from", view.from);
    query.set("to", view.to);
  } else if (view.range) {
    query.set("range", view.range);
  }
  for (const [key, value] of view.labels) query.append(`label.${key}`, value);
  if (view.metrics.length) query.set("metric", view.metrics.join(","));
  if (view.horizon) query.set("horizon", view.horizon);
  if (!view.refresh) query.set("refresh", "off");
  else if (view.refreshSeconds !== REFRESH_DEFAULT_SECONDS) {
    query.set("refresh", duration(view.refreshSeconds));
  }
  return query;
}

function newestVersion(versions) {
  const byLastSeen = (a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen);
  return [...versions.values()].sort(byLastSeen)[0];
}

// The range of a view whose URL names none: 24 hours, or the shortest range that holds every
// sample of the version when it began reporting less than a day before `now` (milliseconds),
// so that a new model's few buckets fill its charts rather than sit as dots at their edge.
export function fittingRange(entry, now) {
  const age = entry ? (now - Date.parse(entry.first_seen)) / 1000 : Infinity;
  return RANGES.find((range) => FITTING_SECONDS[range] >= age) ?? DEFAULT_RANGE;
}

// Defaults for whatever the URL left out or the catalogue (model -> version -> /models entry)
// no longer has: no model (the overview) unless one it has is named, then its most recently
// seen version, no baseline, a fitting range.
export function settle(view, catalogue, now = Date.now()) {
  if (!catalogue.has(view.model)) view.model = null;
  const versions = catalogue.get(view.model) || new Map();
  if (!versions.has(view.version)) {
    view.version = versions.size ? newestVersion(versions).version : null;
  }
  if (view.baseline === view.version || !versions.has(view.baseline)) view.baseline = null;
  if (!view.range) view.range = fittingRange(versions.get(view.version), now);
}

// The charts to draw: each metric ticked in the filter (all the shown versions' metrics when
// none is), said to have samples in the answer or not; none when no metric has any, as the
// page then says where the samples are.
export function chartedMetrics(view, known, sampled) {
  if (!sampled.length) return [];
  const ticked = view.metrics.length ? view.metrics : known;
  return [...new Set([...ticked, ...sampled])]
    .sort()
    .map((metric) => ({ metric, sampled: sampled.includes(metric) }));
}

// The API's query for the view: its window, automatic buckets, metrics and label filters.
export function apiQuery(view) {
  return [
    ...rangeQuery(view),
    ["bucket", "auto"],
    ["metric", view.metrics.join(",")],
    ...view.labels.map(([key, value]) => [`label.${key}`, value]),
  ];
}

// The range alone, as /drift, /accuracy and /overview take it: since a duration back from now
// or a time, until now unless a custom range says.
export function rangeQuery(view) {
  const since = ["since", view.from || view.range];
  return view.from ? [since, ["until", view.to]] : [since];
}

// The custom range's fields hold UTC times as "YYYY-MM-DD HH:MM" (a browser's date-time input
// would show local time in the reader's locale); the URL and the API take RFC 3339.
const UTC_INPUT = /^\s*(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(:\d{2})?Z?\s*$/;

export function fromUtcInput(text) {
  const found = UTC_INPUT.exec(text);
  if (!found) return null;
  const rfc3339 = `${found[1]}T${found[2]}${found[3] || ":00"}Z`;
  return Number.isNaN(Date.parse(rfc3339)) ? null : rfc3339;
}

export function toUtcInput(rfc3339) {
  return rfc3339 ? rfc3339.replace("T", " ").slice(0, 16) : "";
}
