// The drift strip of a model version (a /drift answer): a row per feature, a cell per window
// (or per cell of whole windows) placed on the range's time axis, coloured by grades.js; the
// windows' own row (drift share and dataset drift) on top, the prediction's row set apart
// below. Hovering a cell says its verdict, method and figure. Data is only ever set as text.

import { axisLabel } from "./format.js";
import { columnCell, columnText, grade, windowState, windowText } from "./grades.js";

const TICK_STEPS = [300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
const MAX_TICKS = 8;
const NO_VERDICT = new Set(["no-reference", "rows-short"]);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// Where a cell goes on a track, in percent of the range.
function place(node, time, seconds, range) {
  const from = (Date.parse(time) / 1000 - range.since) / (range.until - range.since);
  node.style.left = `${from * 100}%`;
  node.style.width = `${(seconds / (range.until - range.since)) * 100}%`;
}

function cell(time, seconds, range, state, text) {
  const node = element("div", undefined, `cell ${state}`);
  place(node, time, seconds, range);
  node.dataset.time = time;
  node.dataset.state = state;
  node.dataset.text = text;
  return node;
}

function row(name, note, className) {
  const line = element("div", undefined, `strip-row ${className}`);
  const label = element("span", name, "name");
  if (note) label.append(" ", element("small", note));
  const track = element("div", undefined, "track");
  line.append(label, track);
  return { line, track };
}

// The windows without a verdict (no reference yet, too few rows), shown in every row.
function unjudged(answer) {
  return answer.cells
    .filter((c) => NO_VERDICT.has(windowState(c)))
    .map((c) => [c, windowState(c), windowText(c, answer.cell_seconds)]);
}

function windowRow(answer, range) {
  const { line, track } = row("dataset", "drift share", "windows");
  for (const found of answer.cells) {
    let state = windowState(found);
    if (state === "judged") state = found.drift_share > 0 ? "close" : "fine";
    if (state === "dataset-drift") state = "drifted level-2";
    const node = cell(
      found.time,
      answer.cell_seconds,
      range,
      state,
      windowText(found, answer.cell_seconds),
    );
    node.dataset.state = windowState(found);
    track.appendChild(node);
  }
  return line;
}

function columnRow(column, answer, range, className, skipped) {
  const note = `${column.drifted}/${column.judged}`;
  const { line, track } = row(column.feature, note, className);
  line.title = `${column.feature}: ${column.drifted} of ${column.judged} windows judged drifted`;
  line.dataset.feature = column.feature;
  for (const [found, state, text] of skipped) {
    track.appendChild(cell(found.time, answer.cell_seconds, range, state, text));
  }
  answer.cells.forEach((_, i) => {
    const found = columnCell(answer, column, i);
    if (found === null) return;
    const { state, level } = grade(found, answer.methods);
    const text = columnText(column.feature, found, answer.methods, answer.cell_seconds);
    const node = cell(found.time, answer.cell_seconds, range, `${state} level-${level}`, text);
    node.dataset.state = state;
    node.dataset.level = String(level);
    node.dataset.method = found.method;
    node.dataset.figure = String(found.figure);
    track.appendChild(node);
  });
  return line;
}

function axis(range) {
  const { line, track } = row("", undefined, "axis");
  const span = range.until - range.since;
  const step = TICK_STEPS.find((s) => span / s <= MAX_TICKS) ?? TICK_STEPS.at(-1);
  let first = true;
  for (let tick = Math.ceil(range.since / step) * step; tick <= range.until; tick += step) {
    const label = element("span", axisLabel(new Date(tick * 1000), step, first), "tick");
    label.style.left = `${((tick - range.since) / span) * 100}%`;
    track.appendChild(label);
    first = false;
  }
  return line;
}

// Each key: its swatches and its words (grades.js says where the shades of drifted change).
const LEGEND = [
  [["fine"], "fine"],
  [["close"], "close to its threshold"],
  [
    ["drifted level-1", "drifted level-2", "drifted level-3"],
    "drifted: up to 3x, 10x, further past",
  ],
  [["no-reference"], "no reference yet"],
  [["rows-short"], "too few rows"],
];

function legend() {
  const box = element("div", undefined, "legend strip-legend");
  for (const [states, text] of LEGEND) {
    const key = element("span", undefined, "swatch-key");
    key.append(...states.map((state) => element("span", undefined, `swatch cell ${state}`)));
    key.append(` ${text}`);
    box.appendChild(key);
  }
  return box;
}

// One tooltip for the whole strip, following the cell under the mouse.
function hoverTips(strip) {
  const tip = element("div", undefined, "tooltip strip-tip");
  tip.hidden = true;
  strip.appendChild(tip);
  strip.addEventListener("mouseover", (event) => {
    const target = event.target.closest(".cell[data-text]");
    if (!target || !strip.contains(target)) return;
    tip.textContent = target.dataset.text;
    tip.hidden = false;
    const box = strip.getBoundingClientRect();
    const at = target.getBoundingClientRect();
    const flip = at.left - box.left > box.width / 2;
    tip.style.left = flip ? "" : `${at.right - box.left + 6}px`;
    tip.style.right = flip ? `${box.right - at.left + 6}px` : "";
    tip.style.top = `${at.top - box.top}px`;
  });
  strip.addEventListener("mouseleave", () => {
    tip.hidden = true;
  });
}

// answer: the /drift answer; range: {since, until} in seconds, the range the page shows.
export function driftStrip(answer, range) {
  const strip = element("div", undefined, "strip");
  strip.dataset.cellSeconds = String(answer.cell_seconds);
  const skipped = unjudged(answer);
  strip.appendChild(windowRow(answer, range));
  for (const column of answer.features) {
    strip.appendChild(columnRow(column, answer, range, "feature", skipped));
  }
  if (answer.prediction) {
    strip.appendChild(element("div", "prediction drift", "strip-heading"));
    strip.appendChild(columnRow(answer.prediction, answer, range, "prediction", skipped));
  }
  strip.appendChild(axis(range));
  strip.appendChild(legend());
  hoverTips(strip);
  return strip;
}
