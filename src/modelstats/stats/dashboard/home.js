// The home page: every model version of an /overview answer in one table, with its traffic,
// last drift share, last accuracy and the alerts firing now; each links to its own view.

import { clock, utc, whole } from "./format.js";
import { accuracySummary, driftSummary } from "./grades.js";

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// Logged traffic for a monitored version; the samples reported, for the others.
export function trafficText(version) {
  if (version.inference) {
    const parts = [];
    if (version.requests !== null) parts.push(`${whole(version.requests)} requests`);
    if (version.rows !== null) parts.push(`${whole(version.rows)} rows`);
    return parts.join(", ") || "no traffic";
  }
  return `${whole(version.samples)} samples`;
}

function cell(row, text, className) {
  const found = row.insertCell();
  found.textContent = text;
  if (className) found.className = className;
  return found;
}

function firingCell(row, firing) {
  const found = row.insertCell();
  found.className = "firing";
  if (!firing.length) {
    found.textContent = "–";
    return;
  }
  for (const alert of firing) {
    const line = element("div", undefined, `alert ${alert.severity || ""}`);
    line.append(element("b", alert.rule), ` (${alert.severity || "?"}) on ${alert.metric}`);
    if (alert.summary) line.title = alert.summary;
    found.appendChild(line);
  }
}

const HEADS = [
  "model",
  "version",
  "traffic",
  "drift share (last window)",
  "accuracy (last)",
  "alerts firing",
  "last sample",
];

// answer: the /overview answer; link(model, version): the URL of that version's view.
export function overviewTable(answer, link) {
  const table = element("table", undefined, "overview-table");
  const head = table.createTHead().insertRow();
  for (const name of HEADS) head.appendChild(element("th", name));
  const body = table.createTBody();
  for (const model of answer.models) {
    for (const version of model.versions) {
      const row = body.insertRow();
      row.dataset.model = model.model;
      row.dataset.version = version.version;
      if (version.firing.length) row.className = "has-firing";
      const name = row.insertCell();
      const anchor = element("a", model.model);
      anchor.href = link(model.model, version.version);
      name.appendChild(anchor);
      if (version.inference) name.append(" ", element("small", "monitored", "badge"));
      cell(row, version.version);
      cell(row, trafficText(version), "number");
      const drift = cell(row, driftSummary(version.drift), "number");
      if (version.drift?.dataset_drift) drift.classList.add("bad");
      if (version.drift) drift.title = `window of ${utc(new Date(version.drift.time))}`;
      const accuracy = cell(row, accuracySummary(version.accuracy), "number");
      if (version.accuracy) accuracy.title = `window of ${utc(new Date(version.accuracy.time))}`;
      firingCell(row, version.firing);
      cell(
        row,
        version.last_seen ? utc(new Date(version.last_seen)) : "none in this range",
        "when",
      );
    }
  }
  return table;
}

// Draws an /overview answer into `place`; returns [the status line, a message or ""].
export function drawOverview(place, answer, link) {
  const since = utc(new Date(answer.since));
  const until = utc(new Date(answer.until));
  place.replaceChildren(overviewTable(answer, link));
  const empty = answer.models.length ? "" : `no model has samples between ${since} and ${until}`;
  return [`${since} → ${until}, updated ${clock(new Date())}`, empty];
}
