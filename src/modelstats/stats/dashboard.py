"""The dashboard: one static page (GET /) that draws charts from the JSON API in the browser.

No external scripts or styles (clusters may have no internet). The page holds no data: it asks
for a token when the API answers 401 and keeps it in the browser's localStorage.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>modelstats</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
  select, button { font: inherit; margin-right: .5em; }
  table { border-collapse: collapse; margin: 1em 0; }
  th, td { padding: .25em .6em; border-bottom: 1px solid #ddd; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .charts { display: flex; flex-wrap: wrap; gap: 1em; }
  figure { margin: 0; } figcaption { font-weight: 600; }
  #error { color: #b00; }
</style>
</head>
<body>
<h1>modelstats</h1>
<p>
  <select id="model"></select><select id="version"></select>
  <select id="window">
    <option value="24h|1h">last 24 hours</option><option value="7d|6h">last 7 days</option>
    <option value="30d|1d">last 30 days</option>
  </select>
  <button id="token">token</button>
</p>
<p id="error"></p>
<table id="table"></table>
<div class="charts" id="charts"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let models = [];

async function api(path) {
  const token = localStorage.getItem("modelstats-token");
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    askToken();
    throw new Error("this API needs a token");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function askToken() {
  const token = prompt("STATS_API_TOKEN");
  if (token !== null) { localStorage.setItem("modelstats-token", token); start(); }
}

function option(select, value) {
  const o = document.createElement("option");
  o.value = o.textContent = value;
  select.appendChild(o);
}

function fmt(x) {
  return x === null ? "" : Math.abs(x) >= 1e5 || (x !== 0 && Math.abs(x) < 1e-3)
    ? x.toExponential(3) : +x.toFixed(4);
}

function chart(title, points) {
  const canvas = document.createElement("canvas");
  canvas.width = 420; canvas.height = 200;
  const g = canvas.getContext("2d");
  const pad = 30, w = canvas.width - 2 * pad, h = canvas.height - 2 * pad;
  const times = points.map((p) => Date.parse(p.time));
  const values = points.flatMap((p) => [p.min, p.max]);
  const [t0, t1] = [Math.min(...times), Math.max(...times) || 1];
  const [v0, v1] = [Math.min(...values), Math.max(...values)];
  const x = (t) => pad + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * w;
  const y = (v) => pad + h - (v1 > v0 ? (v - v0) / (v1 - v0) : 0.5) * h;
  g.strokeStyle = "#999"; g.strokeRect(pad, pad, w, h);
  g.fillStyle = "#333"; g.fillText(fmt(v1), 2, pad); g.fillText(fmt(v0), 2, pad + h);
  for (const [key, color] of [["mean", "#1f6fd0"], ["p95", "#d0541f"]]) {
    g.strokeStyle = color; g.beginPath();
    points.forEach((p, i) => (i ? g.lineTo : g.moveTo).call(g, x(times[i]), y(p[key])));
    g.stroke();
    g.fillStyle = color;
    // A dot per bucket: a window with one bucket of data has no line to draw.
    points.forEach((p, i) => g.fillRect(x(times[i]) - 2, y(p[key]) - 2, 4, 4));
    g.fillText(key, pad + w - 60 + (key === "p95" ? 30 : 0), pad - 5);
  }
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, canvas);
  return figure;
}

async function show() {
  $("error").textContent = "";
  const [since, bucket] = $("window").value.split("|");
  const path = "stats/" + encodeURIComponent($("model").value) + "/" +
    encodeURIComponent($("version").value);
  try {
    const body = await api(path + "?since=" + since + "&bucket=" + bucket);
    const columns = ["count", "mean", "min", "max", "stddev", "p50", "p90", "p95", "p99",
                     "last_value", "last"];
    const table = $("table");
    table.replaceChildren();
    const head = table.insertRow();
    for (const column of ["metric", ...columns]) {
      const th = document.createElement("th");
      th.textContent = column;
      head.appendChild(th);
    }
    for (const [name, m] of Object.entries(body.metrics)) {  // names are data: text only
      const row = table.insertRow();
      row.insertCell().textContent = name;
      columns.forEach((c) => { row.insertCell().textContent = c === "last" ? m[c] : fmt(m[c]); });
    }
    $("charts").replaceChildren(...Object.entries(body.series || {}).map(
      ([name, points]) => chart(name, points)));
  } catch (error) {
    $("error").textContent = error.message;
  }
}

function versions() {
  const model = models.find((m) => m.model === $("model").value);
  $("version").replaceChildren();
  (model ? model.versions : []).forEach((v) => option($("version"), v.version));
  show();
}

async function start() {
  try {
    models = (await api("models")).models;
  } catch (error) {
    $("error").textContent = error.message;
    return;
  }
  $("model").replaceChildren();
  models.forEach((m) => option($("model"), m.model));
  versions();
}

$("model").onchange = versions;
$("version").onchange = show;
$("window").onchange = show;
$("token").onclick = askToken;
start();
</script>
</body>
</html>
"""
