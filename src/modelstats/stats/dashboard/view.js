// The view the page shows (model, version, baseline, range, labels, metrics, refresh), read from
// and written to the page's URL, so that a link reproduces it.

import { duration } from "./format.js";

export const RANGES = ["15m", "1h", "6h", "24h", "7d", "30d"];
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
    range: RANGES.includes(query.get("range")) ? query.get("range") : "24h",
    from: from && to ? from : null, // a custom range (or a zoom) needs both ends
    to: from && to ? to : null,
    labels: [...query.entries()]
      .filter(([key]) => key.startsWith("label."))
      .map(([key, value]) => [key.slice("label.".length), value]),
    metrics: (query.get("metric") || "").split(",").filter(Boolean),
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
  } else {
    query.set("range", view.range);
  }
  for (const [key, value] of view.labels) query.append(`label.${key}`, value);
  if (view.metrics.length) query.set("metric", view.metrics.join(","));
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

// Defaults for whatever the URL left out or the catalogue (model -> version -> /models entry)
// no longer has: the first model, its most recently seen version, no baseline.
export function settle(view, catalogue) {
  if (!catalogue.has(view.model)) view.model = catalogue.keys().next().value ?? null;
  const versions = catalogue.get(view.model) || new Map();
  if (!versions.has(view.version)) {
    view.version = versions.size ? newestVersion(versions).version : null;
  }
  if (view.baseline === view.version || !versions.has(view.baseline)) view.baseline = null;
}

// The API's query for the view: its window, automatic buckets, metrics and label filters.
export function apiQuery(view) {
  const since = ["since", view.from || view.range]; // a duration back from now, or a time
  const until = view.from ? [["until", view.to]] : []; // by default, now
  return [
    since,
    ...until,
    ["bucket", "auto"],
    ["metric", view.metrics.join(",")],
    ...view.labels.map(([key, value]) => [`label.${key}`, value]),
  ];
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
