// The dashboard page: its state lives in the URL (so a link reproduces the view), it loads the
// stats, alerts and dead letters of that state from the API and draws them.

import * as api from "./api.js";
import { chart } from "./charts.js";
import { duration, rfc3339, unitOf, utc } from "./format.js";
import { alertsPanel, healthPanel, summaryTable } from "./panels.js";

const $ = (id) => document.getElementById(id);
const RANGES = ["15m", "1h", "6h", "24h", "7d", "30d"];
const REFRESH_MS = 30_000;
const DEAD_LETTER_LIMIT = 100;
const MIN_ZOOM_SECONDS = 120;

let state = readState();
let catalogue = new Map(); // model -> Map(version -> its /models entry)
let charts = [];
let zooms = []; // the views to go back to, newest last
let loads = 0; // answers of a load that was superseded are dropped

function readState() {
  const query = new URLSearchParams(location.search);
  const from = query.get("from");
  const to = query.get("to");
  return {
    model: query.get("model"),
    version: query.get("version"),
    baseline: query.get("baseline"),
    range: RANGES.includes(query.get("range")) ? query.get("range") : "24h",
    from: from && to ? from : null,
    to: from && to ? to : null,
    labels: [...query.entries()]
      .filter(([key]) => key.startsWith("label."))
      .map(([key, value]) => [key.slice("label.".length), value]),
    metrics: (query.get("metric") || "").split(",").filter(Boolean),
    refresh: query.get("refresh") !== "off",
  };
}

function writeState() {
  const query = new URLSearchParams();
  for (const name of ["model", "version", "baseline"]) {
    if (state[name]) query.set(name, state[name]);
  }
  if (state.from) {
    query.set("from", state.from);
    query.set("to", state.to);
  } else {
    query.set("range", state.range);
  }
  for (const [key, value] of state.labels) query.append(`label.${key}`, value);
  if (state.metrics.length) query.set("metric", state.metrics.join(","));
  if (!state.refresh) query.set("refresh", "off");
  history.replaceState(null, "", `${location.pathname}?${query}`);
}

function say(text, kind = "error") {
  $("message").textContent = text;
  $("message").className = text ? kind : "";
}

function select(node, values, chosen, empty) {
  node.replaceChildren();
  if (empty !== undefined) node.add(new Option(empty, ""));
  for (const value of values) node.add(new Option(value, value));
  node.value = chosen ?? "";
}

function newestVersion(versions) {
  return [...versions.values()].sort((a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen))[0];
}

// Pick defaults for whatever the URL left out or the catalogue no longer has.
function settleState() {
  if (!catalogue.has(state.model)) state.model = catalogue.keys().next().value ?? null;
  const versions = catalogue.get(state.model) || new Map();
  if (!versions.has(state.version)) state.version = versions.size ? newestVersion(versions).version : null;
  if (state.baseline === state.version || !versions.has(state.baseline)) state.baseline = null;
}

function shownEntries() {
  const versions = catalogue.get(state.model) || new Map();
  return [state.version, state.baseline].filter(Boolean).map((v) => versions.get(v)).filter(Boolean);
}

function labelControls() {
  const keys = new Map();
  for (const entry of shownEntries()) {
    for (const [key, values] of Object.entries(entry.labels)) {
      keys.set(key, [...new Set([...(keys.get(key) || []), ...values])].sort());
    }
  }
  const chosen = new Map(state.labels);
  return [...keys].map(([key, values]) => {
    const label = document.createElement("label");
    const node = document.createElement("select");
    node.dataset.label = key;
    select(node, values, chosen.get(key), "any");
    node.onchange = () => {
      state.labels = [...$("labels").querySelectorAll("select")]
        .filter((s) => s.value).map((s) => [s.dataset.label, s.value]);
      update();
    };
    label.append(`${key} `, node);
    return label;
  });
}

// Series whose labels differ are summed up together unless a filter picks one: say so.
function mergedLabelsHint() {
  const filtered = new Set(state.labels.map(([key]) => key));
  const merged = [];
  for (const node of $("labels").querySelectorAll("select")) {
    if (!filtered.has(node.dataset.label) && node.options.length > 2) {
      const values = [...node.options].slice(1).map((o) => o.value).join(", ");
      merged.push(`${node.dataset.label} (${values})`);
    }
  }
  return merged.length
    ? `Series with different ${merged.join(" and ")} are merged; pick a value to tell them apart.`
    : "";
}

function metricControls() {
  const names = [...new Set(shownEntries().flatMap((entry) => entry.metrics))].sort();
  return names.map((name) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.checked = !state.metrics.length || state.metrics.includes(name);
    box.onchange = () => {
      const checked = [...$("metrics").querySelectorAll("input:checked")].map((b) => b.value);
      state.metrics = checked.length === names.length ? [] : checked;
      update();
    };
    label.append(box, ` ${name}`);
    return label;
  });
}

function syncControls() {
  const versions = [...(catalogue.get(state.model) || new Map()).keys()];
  select($("model"), [...catalogue.keys()], state.model);
  select($("version"), versions, state.version);
  select($("baseline"), versions.filter((v) => v !== state.version), state.baseline, "none");
  $("labels").replaceChildren(...labelControls());
  $("label-hint").textContent = mergedLabelsHint();
  $("metrics").replaceChildren(...metricControls());
  for (const button of $("ranges").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(!state.from && button.dataset.range === state.range));
  }
  $("from").value = state.from ? state.from.slice(0, 16) : "";
  $("to").value = state.to ? state.to.slice(0, 16) : "";
  $("back").hidden = !zooms.length;
  $("refresh").checked = state.refresh;
  $("refresh").disabled = Boolean(state.from);
}

function update() {
  writeState();
  syncControls();
  load();
}

function queryOf() {
  const window = state.from ? [["since", state.from], ["until", state.to]] : [["since", state.range]];
  return [
    ...window,
    ["bucket", "auto"],
    ["metric", state.metrics.join(",")],
    ...state.labels.map(([key, value]) => [`label.${key}`, value]),
  ];
}

function fetchStats() {
  if (state.baseline) {
    return api.get(api.statsPath(state.model), [...queryOf(), ["baseline", state.baseline]]);
  }
  return api.get(api.statsPath(state.model, state.version), queryOf());
}

function fetchAlerts() {
  const since = state.from || state.range;
  return api.get("alerts", [["model", state.model], ["since", since], ["limit", "500"]]);
}

function fetchHealth() {
  return api.get("dead-letters", [["since", "24h"], ["limit", String(DEAD_LETTER_LIMIT)]]);
}

// The shown versions of an answer: the chosen one, then the baseline when there is one.
function versionsOf(answer) {
  const empty = { metrics: {}, series: {} };
  if (answer.versions === undefined) return [{ name: state.version, role: "main", entry: answer }];
  return [
    { name: state.version, role: "main", entry: answer.versions[state.version] || empty },
    { name: state.baseline, role: "baseline", entry: answer.versions[state.baseline] || empty },
  ];
}

function labelsHold(labels) {
  return state.labels.every(([key, value]) => labels[key] === value);
}

function alertIntervals(alerts, metric, until) {
  return alerts
    .filter((a) => a.fired_at && a.metric === metric && a.version === state.version)
    .filter((a) => labelsHold(a.labels))
    .map((a) => ({
      rule: a.rule,
      severity: a.labels.severity || "info",
      summary: a.annotations.summary || "",
      from: Date.parse(a.fired_at) / 1000,
      to: (a.ended_at ? Date.parse(a.ended_at) : until.getTime()) / 1000,
      ended: Boolean(a.ended_at),
    }));
}

function emptyMessage(entry, since, until) {
  const what = `${state.model} ${state.version}`;
  const between = `no samples of ${what} between ${utc(since)} and ${utc(until)}`;
  if (entry.last_sample) return `${between}; last sample at ${utc(new Date(entry.last_sample))}`;
  return `${between}; none match these filters at any time`;
}

function drawCharts(shown, alerts, answer, since, until) {
  charts.forEach((c) => c.destroy());
  const metrics = [...new Set(shown.flatMap((v) => Object.keys(v.entry.series || {})))].sort();
  charts = metrics.map((metric) => chart({
    metric,
    unit: unitOf(metric),
    since: since.getTime() / 1000,
    until: until.getTime() / 1000,
    bucketSeconds: answer.bucket_seconds,
    versions: shown.map((v) => ({ name: v.name, role: v.role, points: v.entry.series?.[metric] || [] })),
    alerts: alertIntervals(alerts, metric, until),
    onZoom: zoom,
  }));
  $("charts").replaceChildren(...charts.map((c) => c.figure));
  charts.forEach((c) => c.resize());
}

function drawTable(shown, answer) {
  const metrics = [...new Set(shown.flatMap((v) => Object.keys(v.entry.metrics)))].sort();
  const rows = metrics.flatMap((metric) => shown
    .filter((v) => v.entry.metrics[metric])
    .map((v) => ({ metric, version: v.name, role: v.role, stats: v.entry.metrics[metric] })));
  const sketch = answer.percentiles === "sketch";
  $("table").replaceChildren(...(rows.length ? [summaryTable(rows, sketch, state.baseline)] : []));
  $("table-note").textContent = !rows.length ? "" : sketch
    ? "≈ percentiles of this long range come from daily sketches, within 0.5% of the exact value;" +
      " the other numbers are exact. Hover a number for its exact value."
    : "Hover a number for its exact value.";
}

function drawStats(answer, alerts) {
  const since = new Date(answer.since);
  const until = new Date(answer.until);
  const shown = versionsOf(answer);
  const main = shown[0].entry;
  say(Object.keys(main.metrics).length ? "" : emptyMessage(main, since, until), "empty");
  $("status").textContent = `${utc(since)} → ${utc(until)}, buckets of ` +
    `${duration(answer.bucket_seconds)}, updated ${new Date().toLocaleTimeString()}`;
  drawCharts(shown, alerts, answer, since, until);
  drawTable(shown, answer);
  return { since, until };
}

function failed(error) {
  if (error instanceof api.Unauthorized) {
    askToken(api.token() ? "The token was refused. " : "");
    return;
  }
  say(error.message);
}

async function load() {
  const generation = ++loads;
  const [stats, alerts, health] = await Promise.allSettled([fetchStats(), fetchAlerts(), fetchHealth()]);
  if (generation !== loads) return;
  const refused = [stats, alerts, health].find((r) => r.reason instanceof api.Unauthorized);
  if (refused) return failed(refused.reason);
  const alertList = alerts.status === "fulfilled" ? alerts.value.alerts : [];
  if (stats.status === "rejected") {
    failed(stats.reason);
  } else {
    const { since, until } = drawStats(stats.value, alertList);
    $("alerts").replaceChildren(alerts.status === "fulfilled"
      ? alertsPanel(alertList.filter((a) => labelsHold(a.labels)), since, until)
      : document.createTextNode(alerts.reason.message));
  }
  $("health").replaceChildren(health.status === "fulfilled"
    ? healthPanel(health.value.dead_letters, DEAD_LETTER_LIMIT)
    : document.createTextNode(health.reason.message));
}

function zoom(fromSeconds, toSeconds) {
  zooms.push({ range: state.range, from: state.from, to: state.to });
  const to = Math.max(toSeconds, fromSeconds + MIN_ZOOM_SECONDS);
  state.from = rfc3339(new Date(Math.floor(fromSeconds) * 1000));
  state.to = rfc3339(new Date(Math.ceil(to) * 1000));
  update();
}

function askToken(why) {
  $("token-form").hidden = false;
  $("token-why").textContent = `${why}This API needs a token: paste its STATS_API_TOKEN.`;
  $("token-input").focus();
}

async function start() {
  say("");
  try {
    const listing = await api.get("models");
    catalogue = new Map(listing.models.map((m) => [m.model, new Map(m.versions.map((v) => [v.version, v]))]));
  } catch (error) {
    failed(error);
    return;
  }
  if (!catalogue.size) {
    say("No samples are stored yet: send some metric events (see the README).", "empty");
    return;
  }
  settleState();
  update();
}

function wire() {
  $("model").onchange = () => {
    Object.assign(state, { model: $("model").value, version: null, baseline: null, labels: [], metrics: [] });
    settleState();
    update();
  };
  $("version").onchange = () => {
    state.version = $("version").value;
    settleState();
    update();
  };
  $("baseline").onchange = () => {
    state.baseline = $("baseline").value || null;
    update();
  };
  for (const button of $("ranges").querySelectorAll("button")) {
    button.onclick = () => {
      Object.assign(state, { range: button.dataset.range, from: null, to: null });
      zooms = [];
      update();
    };
  }
  $("custom").onsubmit = (event) => {
    event.preventDefault();
    if (!$("from").value || !$("to").value) return say("custom range: give both from and to");
    zooms.push({ range: state.range, from: state.from, to: state.to });
    Object.assign(state, { from: `${$("from").value.slice(0, 16)}:00Z`, to: `${$("to").value.slice(0, 16)}:00Z` });
    update();
  };
  $("back").onclick = () => {
    Object.assign(state, zooms.pop());
    update();
  };
  $("refresh").onchange = () => {
    state.refresh = $("refresh").checked;
    writeState();
  };
  $("token-button").onclick = () => askToken("");
  $("token-form").onsubmit = (event) => {
    event.preventDefault();
    api.setToken($("token-input").value.trim());
    $("token-input").value = "";
    $("token-form").hidden = true;
    start();
  };
  let resizing;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => charts.forEach((c) => c.resize()), 150);
  });
  // Only a range that ends now moves; a page in a background tab waits until it is seen.
  setInterval(() => {
    if (state.refresh && !state.from && !document.hidden && state.version) load();
  }, REFRESH_MS);
}

wire();
start();
