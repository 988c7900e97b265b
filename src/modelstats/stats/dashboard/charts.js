// One uPlot chart per metric: the mean as a line over its min-max band, p95 dashed, a baseline
// version overlaid in its own colour, alert firing intervals shaded behind, a tooltip with the
// bucket's exact numbers, and drag-to-zoom reported to the page (which reloads the range).
/* global uPlot */

import { axisLabel, duration, exact, fmt, local, utc, withUnit } from "./format.js";

export const COLOURS = { main: "#1f6fd0", baseline: "#d0541f" };
const SEVERITY_COLOURS = { critical: "#c62828", warning: "#ef8f00", info: "#607d8b" };
const FIELDS = ["min", "max", "mean", "p95"]; // per version, in this order, after the x column
const HEIGHT = 230;

function alpha(hex, opacity) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${opacity})`;
}

// The versions' buckets on one x column (their union); a version without a bucket gets null.
function align(versions) {
  const seconds = (point) => Date.parse(point.time) / 1000;
  const times = [...new Set(versions.flatMap((v) => v.points.map(seconds)))].sort((a, b) => a - b);
  const row = new Map(times.map((time, i) => [time, i]));
  const points = versions.map((version) => {
    const column = new Array(times.length).fill(null);
    for (const point of version.points) column[row.get(seconds(point))] = point;
    return column;
  });
  const data = [times];
  for (const column of points) {
    for (const field of FIELDS) data.push(column.map((point) => (point ? point[field] : null)));
  }
  return { data, points };
}

function versionSeries(version, unit) {
  const colour = COLOURS[version.role];
  const value = (u, v) => (v === null ? "–" : withUnit(fmt(v), unit));
  const edge = { stroke: alpha(colour, 0.35), width: 1, spanGaps: true, points: { show: false } };
  return [
    { ...edge, label: `${version.name} min`, value },
    { ...edge, label: `${version.name} max`, value },
    {
      label: `${version.name} mean`,
      stroke: colour,
      width: 2,
      spanGaps: true,
      value,
      points: { size: 5, fill: colour },
    },
    {
      label: `${version.name} p95`,
      stroke: colour,
      width: 1.5,
      dash: [6, 4],
      spanGaps: true,
      value,
      points: { show: false },
    },
  ];
}

function legend(versions, alerts) {
  const box = document.createElement("div");
  box.className = "legend";
  const item = (kind, colour, text) => {
    const entry = document.createElement("span");
    entry.className = `key ${kind}`;
    entry.style.setProperty("--colour", colour);
    entry.textContent = text;
    box.appendChild(entry);
  };
  for (const version of versions) {
    const colour = COLOURS[version.role];
    const name = version.role === "baseline" ? `${version.name} (baseline)` : version.name;
    item("line", colour, `${name} mean`);
    item("dashed", colour, "p95");
    item("band", alpha(colour, 0.25), "min–max");
  }
  for (const severity of new Set(alerts.map((alert) => alert.severity))) {
    item(
      "band",
      alpha(SEVERITY_COLOURS[severity] || SEVERITY_COLOURS.info, 0.3),
      `${severity} alert firing`,
    );
  }
  return box;
}

// Where a band's label goes, in the plot's pixels: from the band's left edge, or back from its
// right edge when the band ends in the right half (the label runs into the plot, not out of
// it); null when it would cover a label already placed (`taken`: their [from, to] spans).
export function labelSpan(left, right, labelWidth, plotWidth, taken) {
  const fromRight = left + right > plotWidth;
  const from = fromRight ? Math.max(0, right - labelWidth) : Math.min(left, plotWidth - labelWidth);
  const span = [from, from + labelWidth];
  return taken.some(([a, b]) => span[0] < b && a < span[1]) ? null : span;
}

// Alert intervals as elements under the plot (u.under spans the plotting area): they stay
// behind the series and can be found and read like any other element of the page. Each band
// is named by its rule in full, in a label of its own width (a band narrower than its name
// would cut it), unless that label would cover another's.
function drawAlertBands(u, alerts) {
  u.under.querySelectorAll(".alert-band").forEach((band) => band.remove());
  const width = u.under.clientWidth;
  const taken = [];
  for (const alert of alerts) {
    const left = Math.max(0, u.valToPos(alert.from, "x"));
    const right = Math.min(width, u.valToPos(alert.to, "x"));
    if (right <= 0 || left >= width) continue;
    const band = document.createElement("div");
    band.className = `alert-band ${alert.severity}`;
    band.style.left = `${left}px`;
    band.style.width = `${Math.max(2, right - left)}px`;
    band.style.setProperty("--colour", SEVERITY_COLOURS[alert.severity] || SEVERITY_COLOURS.info);
    band.dataset.rule = alert.rule;
    band.dataset.from = new Date(alert.from * 1000).toISOString();
    band.dataset.to = new Date(alert.to * 1000).toISOString();
    u.under.appendChild(band);
    const label = textElement("span", alert.rule, "alert-label");
    band.appendChild(label);
    const span = labelSpan(left, right, label.offsetWidth, width, taken);
    if (span === null) {
      label.remove();
      continue;
    }
    taken.push(span);
    label.style.left = `${span[0] - left}px`;
  }
}

function textElement(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

// The bucket under the cursor: its time, each version's exact numbers, the alerts firing then.
function tooltipContent(spec, aligned, idx, at) {
  const start = new Date(aligned.data[0][idx] * 1000);
  const parts = [
    textElement("div", `${utc(start)}, bucket of ${duration(spec.bucketSeconds)}`, "when"),
    textElement("div", local(start), "local"),
  ];
  const table = document.createElement("table");
  const head = table.insertRow();
  head.appendChild(textElement("th", ""));
  spec.versions.forEach((version) =>
    head.appendChild(
      textElement("th", version.role === "baseline" ? `${version.name} (baseline)` : version.name),
    ),
  );
  for (const field of ["count", "mean", "min", "max", "p95"]) {
    const row = table.insertRow();
    row.appendChild(textElement("th", field));
    spec.versions.forEach((version, i) => {
      const point = aligned.points[i][idx];
      const value = point ? exact(point[field]) : "–";
      row.insertCell().textContent =
        point && field !== "count" ? withUnit(value, spec.unit) : value;
    });
  }
  parts.push(table);
  for (const alert of spec.alerts) {
    if (alert.from <= at && at <= alert.to) {
      const ended = alert.ended ? `resolved ${utc(new Date(alert.to * 1000))}` : "still firing";
      parts.push(
        textElement(
          "div",
          `alert ${alert.rule} (${alert.severity}): ${alert.summary};` +
            ` fired ${utc(new Date(alert.from * 1000))}, ${ended}`,
          `alert ${alert.severity}`,
        ),
      );
    }
  }
  return parts;
}

function showTooltip(tip, hovered, u, spec, aligned) {
  const idx = u.cursor.idx;
  if (!hovered || idx === null || idx === undefined || u.cursor.left < 0) {
    tip.hidden = true;
    return;
  }
  const at = u.posToVal(u.cursor.left, "x");
  tip.replaceChildren(...tooltipContent(spec, aligned, idx, at));
  tip.hidden = false;
  const flip = u.cursor.left > u.over.clientWidth / 2;
  tip.style.left = flip ? "" : `${u.cursor.left + 12}px`;
  tip.style.right = flip ? `${u.over.clientWidth - u.cursor.left + 12}px` : "";
  tip.style.top = `${Math.min(u.cursor.top, u.over.clientHeight - 20)}px`;
}

function axes(spec, figure) {
  return [
    {
      label: "time (UTC)",
      space: 70,
      values: (u, splits, axisIdx, space, step) => {
        const labels = splits.map((s, i) => axisLabel(new Date(s * 1000), step, i === 0));
        figure.dataset.xLabels = JSON.stringify(labels); // what the axis shows, for readers
        return labels;
      },
    },
    {
      label: spec.unit || "",
      values: (u, splits) => splits.map(fmt),
      size: (u, values) => (values ? 14 + 7 * Math.max(...values.map((v) => v.length)) : 50),
    },
  ];
}

function options(spec, figure) {
  return {
    width: 600,
    height: HEIGHT,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    // The x scale is the range asked for, whatever part of it has data.
    scales: { x: { time: true, range: () => [spec.since, spec.until] } },
    series: [{ label: "time" }, ...spec.versions.flatMap((v) => versionSeries(v, spec.unit))],
    bands: spec.versions.map((version, i) => ({
      series: [2 + 4 * i, 1 + 4 * i], // max over min of that version
      fill: alpha(COLOURS[version.role], version.role === "main" ? 0.16 : 0.1),
    })),
    axes: axes(spec, figure),
    legend: { show: false }, // our own legend names the series; the tooltip has the values
    cursor: { drag: { x: true, y: false, setScale: false }, sync: { key: "modelstats" } },
  };
}

function caption(metric, unit) {
  return textElement("figcaption", withUnit(metric, unit ? `(${unit})` : ""));
}

// A metric ticked in the filter that has no sample in the range: its place, and why it is empty.
export function emptyChart(metric, unit) {
  const figure = document.createElement("figure");
  figure.className = "chart empty";
  figure.dataset.metric = metric;
  figure.append(caption(metric, unit), textElement("p", "no samples in this range", "no-samples"));
  return { figure, resize: () => {}, destroy: () => {} };
}

// spec: { metric, unit, since, until (seconds), bucketSeconds, versions: [{name, role, points}],
//         alerts: [{rule, severity, summary, from, to, ended}], onZoom(from, to) }
export function chart(spec) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  figure.dataset.metric = spec.metric;
  const plot = document.createElement("div");
  figure.append(caption(spec.metric, spec.unit), legend(spec.versions, spec.alerts), plot);

  const aligned = align(spec.versions);
  const tip = document.createElement("div");
  tip.className = "tooltip";
  tip.hidden = true;
  // Charts share their cursor (sync): only the one under the mouse shows its tooltip.
  let hovered = false;
  const hooks = {
    draw: [(u) => drawAlertBands(u, spec.alerts)],
    setCursor: [(u) => showTooltip(tip, hovered, u, spec, aligned)],
    setSelect: [
      (u) => {
        // Synced charts all see the selection: the one dragged on reports it, once.
        if (hovered && u.select.width > 4) {
          const from = u.posToVal(u.select.left, "x");
          spec.onZoom(from, u.posToVal(u.select.left + u.select.width, "x"));
        }
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      },
    ],
  };
  const u = new uPlot({ ...options(spec, figure), hooks }, aligned.data, plot);
  u.over.appendChild(tip);
  u.over.addEventListener("mouseenter", () => {
    hovered = true;
  });
  u.over.addEventListener("mouseleave", () => {
    hovered = false;
    tip.hidden = true;
  });
  return {
    figure,
    resize: () => u.setSize({ width: Math.max(300, plot.clientWidth), height: HEIGHT }),
    destroy: () => u.destroy(),
  };
}
