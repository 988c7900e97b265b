// The dashboard page: its state lives in the URL (so a link reproduces the view), it loads the
// stats, alerts and dead letters of that state from the API and draws them. Without a model in
// the state it is the overview of every model (home.js); a monitored version's view adds its
// drift strip and accuracy (inference.js).

import * as api from "./api.js";
import { chart, emptyChart } from "./charts.js";
import { clock, duration, rfc3339, unitOf, utc } from "./format.js";
import { fillSelect, labelSelects, mergedLabelsHint, metricBoxes } from "./controls.js";
import { drawOverview } from "./home.js";
import { fetchInference, inferencePart, isMonitored } from "./inference.js";
import { alertsPanel, healthPanel, summary } from "./panels.js";
import {
  apiQuery,
  chartedMetrics,
  fromUtcInput,
  rangeQuery,
  readView,
  settle,
  toUtcInput,
  viewQuery,
} from "./view.js";

const $ = (id) => document.getElementById(id);
const DEAD_LETTER_LIMIT = 100;
const MIN_ZOOM_SECONDS = 120;

let state = readView(location.search);
let catalogue = new Map(); // model -> Map(version -> its /models entry)
let charts = [];
let zooms = []; // the views to go back to, newest last
let loads = 0; // answers of a load that was superseded are dropped
let notice = ""; // said once the overview is drawn (a link named a model that is gone)

function writeState() {
  history.replaceState(null, "", `${location.pathname}?${viewQuery(state)}`);
}

function say(text, kind = "error") {
  $("message").textContent = text;
  $("message").className = text ? kind : "";
}

function shownEntries() {
  const versions = catalogue.get(state.model) || new Map();
  return [state.version, state.baseline]
    .filter(Boolean)
    .map((v) => versions.get(v))
    .filter(Boolean);
}

function monitored() {
  return isMonitored((catalogue.get(state.model) || new Map()).get(state.version));
}

// The link to one version's view (or, without a model, the overview), over the range shown.
function versionLink(model, version) {
  const target = { ...state, model, version, baseline: null, labels: [], metrics: [] };
  return `?${viewQuery(target)}`;
}

function syncControls() {
  const versions = [...(catalogue.get(state.model) || new Map()).keys()];
  document.body.className = state.model ? "model" : "home";
  $("home").href = versionLink(null, null);
  $("inference").hidden = !monitored();
  fillSelect($("model"), [...catalogue.keys()], state.model, "all models");
  fillSelect($("version"), versions, state.version);
  const others = versions.filter((v) => v !== state.version);
  fillSelect($("baseline"), others, state.baseline, "none");
  const entries = shownEntries();
  const labels = labelSelects(entries, state.labels, (chosen) => {
    state.labels = chosen;
    update();
  });
  $("labels").replaceChildren(...labels);
  $("label-hint").textContent = mergedLabelsHint(entries, state.labels);
  const metrics = metricBoxes(entries, state.metrics, (chosen) => {
    state.metrics = chosen;
    update();
  });
  $("metrics").replaceChildren(...metrics);
  for (const button of $("ranges").querySelectorAll("button")) {
    const pressed = !state.from && button.dataset.range === state.range;
    button.setAttribute("aria-pressed", String(pressed));
  }
  $("from").value = toUtcInput(state.from);
  $("to").value = toUtcInput(state.to);
  $("back").hidden = !zooms.length;
  $("refresh").checked = state.refresh;
  $("refresh").disabled = Boolean(state.from);
}

function update() {
  writeState();
  syncControls();
  load();
}

function fetchStats() {
  if (state.baseline) {
    return api.get(api.statsPath(state.model), [...apiQuery(state), ["baseline", state.baseline]]);
  }
  return api.get(api.statsPath(state.model, state.version), apiQuery(state));
}

function fetchAlerts() {
  const since = state.from || state.range;
  return api.get("alerts", [
    ["model", state.model],
    ["since", since],
    ["limit", "500"],
  ]);
}

function fetchHealth() {
  return api.get("dead-letters", [
    ["since", "24h"],
    ["limit", String(DEAD_LETTER_LIMIT)],
  ]);
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
  const sampled = [...new Set(shown.flatMap((v) => Object.keys(v.entry.series || {})))];
  const known = [...new Set(shownEntries().flatMap((entry) => entry.metrics))];
  charts = chartedMetrics(state, known, sampled).map(({ metric, sampled: hasSamples }) => {
    if (!hasSamples) return emptyChart(metric, unitOf(metric));
    return chart({
      metric,
      unit: unitOf(metric),
      since: since.getTime() / 1000,
      until: until.getTime() / 1000,
      bucketSeconds: answer.bucket_seconds,
      versions: shown.map((v) => ({
        name: v.name,
        role: v.role,
        points: v.entry.series?.[metric] || [],
      })),
      alerts: alertIntervals(alerts, metric, until),
      onZoom: zoom,
    });
  });
  $("charts").replaceChildren(...charts.map((c) => c.figure));
  charts.forEach((c) => c.resize());
}

function drawTable(shown, answer) {
  const { nodes, note } = summary(shown, answer.percentiles === "sketch", state.baseline);
  $("table").replaceChildren(...nodes);
  $("table-note").textContent = note;
}

function drawStats(answer, alerts) {
  const since = new Date(answer.since);
  const until = new Date(answer.until);
  const shown = versionsOf(answer);
  const main = shown[0].entry;
  say(Object.keys(main.metrics).length ? "" : emptyMessage(main, since, until), "empty");
  $("status").textContent =
    `${utc(since)} → ${utc(until)}, buckets of ` +
    `${duration(answer.bucket_seconds)}, updated ${clock(new Date())}`;
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

function drawHealth(health) {
  $("health").replaceChildren(
    health.status === "fulfilled"
      ? healthPanel(health.value.dead_letters, DEAD_LETTER_LIMIT)
      : document.createTextNode(health.reason.message),
  );
}

async function loadOverview(generation) {
  const [overview, health] = await Promise.allSettled([
    api.get("overview", rangeQuery(state)),
    fetchHealth(),
  ]);
  if (generation !== loads) return;
  const refused = [overview, health].find((r) => r.reason instanceof api.Unauthorized);
  if (refused) return failed(refused.reason);
  if (overview.status === "rejected") {
    failed(overview.reason);
  } else {
    const [status, message] = drawOverview($("overview"), overview.value, versionLink);
    $("status").textContent = status;
    say(message || notice, "empty");
    notice = "";
  }
  drawHealth(health);
}

async function load() {
  const generation = ++loads;
  if (!state.model) return loadOverview(generation);
  const inference = monitored()
    ? fetchInference(state.model, state.version, rangeQuery(state), state.horizon)
    : null;
  const [stats, alerts, health, figures] = await Promise.allSettled([
    fetchStats(),
    fetchAlerts(),
    fetchHealth(),
    inference,
  ]);
  if (generation !== loads) return;
  const refused = [stats, alerts, health, figures].find(
    (r) => r.reason instanceof api.Unauthorized,
  );
  if (refused) return failed(refused.reason);
  if (inference) monitoredPart.show(figures);
  const alertList = alerts.status === "fulfilled" ? alerts.value.alerts : [];
  if (stats.status === "rejected") {
    failed(stats.reason);
  } else {
    const { since, until } = drawStats(stats.value, alertList);
    $("alerts").replaceChildren(
      alerts.status === "fulfilled"
        ? alertsPanel(
            alertList.filter((a) => labelsHold(a.labels)),
            since,
            until,
          )
        : document.createTextNode(alerts.reason.message),
    );
  }
  drawHealth(health);
}

const monitoredPart = inferencePart({ drift: $("drift"), accuracy: $("accuracy") }, zoom);

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
    catalogue = new Map(
      listing.models.map((m) => [m.model, new Map(m.versions.map((v) => [v.version, v]))]),
    );
  } catch (error) {
    failed(error);
    return;
  }
  if (!catalogue.size) {
    say("No samples are stored yet: send some metric events (see the README).", "empty");
    return;
  }
  const asked = state.model;
  settle(state, catalogue);
  if (asked && !state.model) notice = `no model ${asked}: every model is listed here`;
  update();
}

function wireSelects() {
  $("model").onchange = () => {
    Object.assign(state, {
      model: $("model").value || null,
      version: null,
      baseline: null,
      labels: [],
      metrics: [],
    });
    settle(state, catalogue);
    update();
  };
  $("version").onchange = () => {
    state.version = $("version").value;
    settle(state, catalogue);
    update();
  };
  $("baseline").onchange = () => {
    state.baseline = $("baseline").value || null;
    update();
  };
}

function wireRanges() {
  for (const button of $("ranges").querySelectorAll("button")) {
    button.onclick = () => {
      Object.assign(state, { range: button.dataset.range, from: null, to: null });
      zooms = [];
      update();
    };
  }
  $("custom").onsubmit = (event) => {
    event.preventDefault();
    const from = fromUtcInput($("from").value);
    const to = fromUtcInput($("to").value);
    if (!from || !to) return say("custom range: write from and to as YYYY-MM-DD HH:MM (UTC)");
    zooms.push({ range: state.range, from: state.from, to: state.to });
    Object.assign(state, { from, to });
    update();
  };
  $("back").onclick = () => {
    Object.assign(state, zooms.pop());
    update();
  };
}

function wireHome() {
  $("home").onclick = (event) => {
    event.preventDefault();
    Object.assign(state, { model: null, version: null, baseline: null, labels: [], metrics: [] });
    update();
  };
}

function wireToken() {
  $("token-button").onclick = () => askToken("");
  $("token-form").onsubmit = (event) => {
    event.preventDefault();
    api.setToken($("token-input").value.trim());
    $("token-input").value = "";
    $("token-form").hidden = true;
    start();
  };
}

function wire() {
  wireSelects();
  wireRanges();
  wireHome();
  wireToken();
  $("refresh").onchange = () => {
    state.refresh = $("refresh").checked;
    writeState();
  };
  let resizing;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => [...charts, monitoredPart].forEach((c) => c.resize()), 150);
  });
  // Only a range that ends now moves; a page in a background tab waits until it is seen.
  $("refresh-every").textContent = duration(state.refreshSeconds);
  setInterval(() => {
    if (state.refresh && !state.from && !document.hidden) load();
  }, state.refreshSeconds * 1000);
}

wire();
start();
