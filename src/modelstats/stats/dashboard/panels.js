// The summary table, the alerts panel and the pipeline health panel. Everything that comes from
// the API is data: it is only ever set as text, never parsed as HTML.

import { labelsText, transitionText } from "./alerts.js";
import { exact, fmt, percent, signed, utc, withUnit, unitOf } from "./format.js";

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function numberCell(row, value, unit) {
  const cell = row.insertCell();
  cell.textContent = value === null || value === undefined ? "–" : withUnit(fmt(value), unit);
  cell.title = exact(value);
  return cell;
}

const COLUMNS = ["count", "mean", "min", "max", "stddev", "p50", "p90", "p95", "p99", "last_value"];
const PERCENTILES = new Set(["p50", "p90", "p95", "p99"]);
const COMPARED = ["mean", "p95"];

function header(table, sketch, baseline) {
  const row = table.createTHead().insertRow();
  const names = [
    "metric",
    "version",
    ...COLUMNS.map((c) => (sketch && PERCENTILES.has(c) ? `≈${c}` : c)),
    "last sample",
  ];
  if (baseline) names.push(...COMPARED.map((c) => `${c} vs ${baseline}`));
  for (const name of names) row.appendChild(element("th", name.replace("_", " ")));
}

function changeCell(row, change, unit) {
  const cell = row.insertCell();
  cell.className = "change";
  if (!change || change.difference === null) {
    cell.textContent = "–";
    return;
  }
  const difference = withUnit(signed(change.difference), unit);
  cell.textContent = `${difference} ${percent(change.relative_change)}`;
  cell.title = `difference ${exact(change.difference)}, relative ${exact(change.relative_change)}`;
}

// rows: [{metric, version, role, stats}] in display order.
export function summaryTable(rows, sketch, baseline) {
  const table = element("table", undefined, "summary");
  header(table, sketch, baseline);
  const body = table.createTBody();
  for (const { metric, version, role, stats } of rows) {
    const unit = unitOf(metric);
    const row = body.insertRow();
    row.className = role;
    row.insertCell().textContent = metric;
    row.insertCell().textContent = role === "baseline" ? `${version} (baseline)` : version;
    for (const column of COLUMNS) {
      numberCell(row, stats[column], column === "count" ? "" : unit);
    }
    const last = row.insertCell();
    last.className = "when";
    // When it wraps, between the date and the time ("UTC" stays with its time).
    last.textContent = stats.last ? utc(new Date(stats.last)).replace(" UTC", "\u00a0UTC") : "–";
    if (baseline) {
      for (const name of COMPARED) {
        changeCell(
          row,
          role === "main" && stats.vs_baseline ? stats.vs_baseline[name] : null,
          unit,
        );
      }
    }
  }
  return table;
}

// The summary of the shown versions ([{name, role, entry}], the chosen one first): the table's
// nodes (none when no metric has samples) and the note under it.
export function summary(shown, sketch, baseline) {
  const metrics = [...new Set(shown.flatMap((v) => Object.keys(v.entry.metrics)))].sort();
  const rows = metrics.flatMap((metric) =>
    shown
      .filter((v) => v.entry.metrics[metric])
      .map((v) => ({ metric, version: v.name, role: v.role, stats: v.entry.metrics[metric] })),
  );
  const notes = [];
  if (sketch) {
    notes.push("≈ percentiles of this long range come from daily sketches, within 0.5% of the");
    notes.push("exact value; the other numbers are exact.");
  }
  if (rows.length) notes.push("Hover a number for its exact value.");
  return {
    nodes: rows.length ? [summaryTable(rows, sketch, baseline)] : [],
    note: notes.join(" "),
  };
}

// The alert's series: its version and metric, and the labels that tell it from its twins.
function series(line, alert) {
  line.append(`${alert.version} ${alert.metric}`);
  const labels = labelsText(alert.labels);
  if (labels) line.append(" ", element("span", labels, "labels"));
}

function alertLine(alert) {
  const line = element("li", undefined, `alert ${alert.labels.severity || ""}`);
  line.append(
    element("b", `${alert.rule} `),
    element("span", `(${alert.labels.severity || "?"}) `),
  );
  series(line, alert);
  line.append(`: ${alert.annotations.summary || ""}`);
  line.append(element("small", ` since ${utc(new Date(alert.fired_at || alert.active_at))}`));
  return line;
}

// alerts: the /alerts answer; since/until: Dates of the range shown.
export function alertsPanel(alerts, since, until) {
  const panel = document.createDocumentFragment();
  const firing = alerts.filter((alert) => alert.state === "firing");
  panel.appendChild(element("h3", `Firing now (${firing.length})`));
  if (firing.length) {
    const list = element("ul", undefined, "firing");
    firing.forEach((alert) => list.appendChild(alertLine(alert)));
    panel.appendChild(list);
  } else {
    panel.appendChild(element("p", "nothing is firing", "quiet"));
  }
  const transitions = alerts
    .flatMap((alert) => alert.transitions.map((t) => ({ ...t, alert })))
    .filter((t) => Date.parse(t.at) >= since.getTime() && Date.parse(t.at) <= until.getTime())
    .sort((a, b) => Date.parse(b.at) - Date.parse(a.at))
    .slice(0, 12);
  panel.appendChild(element("h3", "Recent transitions"));
  if (!transitions.length) {
    panel.appendChild(element("p", "no alert changed state in this range", "quiet"));
    return panel;
  }
  const list = element("ul", undefined, "transitions");
  for (const t of transitions) {
    const line = element("li");
    line.append(element("small", `${utc(new Date(t.at))} `), element("b", `${t.alert.rule} `));
    series(line, t.alert);
    line.append(`: ${transitionText(t)}`);
    if (t.value !== null) line.append(` at ${fmt(t.value)}`);
    list.appendChild(line);
  }
  panel.appendChild(list);
  return panel;
}

// letters: the /dead-letters answer for the last 24 hours, at most `limit` of them.
export function healthPanel(letters, limit) {
  const panel = document.createDocumentFragment();
  const count = letters.length >= limit ? `${limit} or more` : String(letters.length);
  panel.appendChild(
    element("p", `Dead letters in the last 24 h: ${count}`, letters.length ? "bad" : "good"),
  );
  if (letters.length) {
    const newest = letters[0];
    const reason = [newest.error.code, newest.error.data].filter((x) => x !== null).join(" ");
    const text =
      `newest ${utc(new Date(newest.received_at))}: ${newest.event.type} from ` +
      `${newest.event.source}${newest.error.dest ? ` to ${newest.error.dest}` : ""}: ` +
      `${reason || "no reason given"}`;
    const shown = text.length > 300 ? `${text.slice(0, 300)}…` : text;
    panel.appendChild(element("p", shown, "reason"));
  }
  return panel;
}
