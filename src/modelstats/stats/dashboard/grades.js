// How the dashboard reads the inference figures: a drift figure graded the same way whatever
// its method (a p-value and a distance both say how far past its threshold they are), the
// words of a drift cell and of a window, and an accuracy cell's state.

import { fmt, utc } from "./format.js";

// At or past half the way to its threshold, a figure that did not drift is "close".
export const CLOSE = 0.5;
// How far past its threshold a drifted figure is, for its shade: 1 up to 3x, 2 up to 10x, 3 beyond.
const LEVELS = [3, 10];

// The figure's distance to drifting: 1 at the method's default threshold, above 1 past it
// (threshold / p for a p-value, distance / threshold for a distance); null when unknown.
export function severity(figure, method, methods) {
  const known = methods[method];
  if (!known || figure === null || figure === undefined) return null;
  if (known.kind === "p-value") return figure > 0 ? known.threshold / figure : Infinity;
  return known.threshold > 0 ? figure / known.threshold : Infinity;
}

// A column's cell: {state: "drifted" | "close" | "fine", level: 0-3}. The verdict the job
// wrote decides whether it drifted (a monitor may set its own threshold); the default
// threshold only says how far.
export function grade(cell, methods) {
  const how = severity(cell.figure, cell.method, methods);
  if (cell.drifted > 0) {
    const level = 1 + LEVELS.filter((limit) => how !== null && how >= limit).length;
    return { state: "drifted", level };
  }
  if (how !== null && how >= CLOSE) return { state: "close", level: 0 };
  return { state: "fine", level: 0 };
}

// "p-value 0.001 (ks: drifted below 0.05)" / "distance 0.23 (psi: drifted from 0.1)".
export function figureText(figure, method, methods) {
  const known = methods[method];
  if (!known) return `${method} ${fmt(figure)}`;
  const rule = known.kind === "p-value" ? "below" : "from";
  return `${known.kind} ${fmt(figure)} (${method}: drifted ${rule} ${fmt(known.threshold)})`;
}

function span(cell, cellSeconds) {
  const start = new Date(cell.time);
  if (cell.windows <= 1) return utc(start);
  return `${utc(start)} + ${Math.round(cellSeconds / 60)} min`;
}

// One column's cell i of a /drift answer: {time, windows, method, judged, drifted, figure}
// (the answer keeps a column's cells as arrays aligned with its `cells`); null when unjudged.
export function columnCell(answer, column, i) {
  const { method, judged, drifted, figure } = column.cells;
  if (method[i] === null) return null;
  const { time, windows } = answer.cells[i];
  return {
    time,
    windows,
    method: method[i],
    judged: judged[i],
    drifted: drifted[i],
    figure: figure[i],
  };
}

// What a column's cell says on hover.
export function columnText(feature, cell, methods, cellSeconds) {
  const { state } = grade(cell, methods);
  const figure = figureText(cell.figure, cell.method, methods);
  if (cell.judged <= 1) return `${feature}, ${span(cell, cellSeconds)}: ${state}; ${figure}`;
  return (
    `${feature}, ${span(cell, cellSeconds)}: ${cell.drifted} of ${cell.judged} windows` +
    ` drifted; the most drifted: ${figure}`
  );
}

// A window cell (or a cell of several windows) in one word, for its colour: "no-reference" and
// "rows-short" when none of its windows got a verdict, else "dataset-drift" when one drifted
// as a dataset, else "judged".
export function windowState(cell) {
  if (cell.judged === 0 && cell.no_reference > 0) return "no-reference";
  if (cell.judged === 0 && cell.rows_short > 0) return "rows-short";
  if (cell.dataset_drift > 0) return "dataset-drift";
  return "judged";
}

const WINDOW_WORDS = { "no-reference": "no reference yet", "rows-short": "too few rows" };

// What a window cell says on hover.
export function windowText(cell, cellSeconds) {
  const state = windowState(cell);
  const when = span(cell, cellSeconds);
  const rows = cell.rows === null ? "" : `, ${fmt(cell.rows)} rows`;
  if (WINDOW_WORDS[state]) return `${when}: ${WINDOW_WORDS[state]}${rows}`;
  const share = `drift share ${fmt(cell.drift_share)}`;
  const dataset = cell.dataset_drift
    ? cell.windows > 1
      ? `dataset drifted in ${cell.dataset_drift} of ${cell.windows} windows`
      : "dataset drifted"
    : "no dataset drift";
  const untold = cell.windows - cell.judged;
  const rest = untold > 0 ? `; ${untold} window(s) without a verdict` : "";
  return `${when}: ${share}, ${dataset}${rows}${rest}`;
}

// The one metric an accuracy chart draws: the first the answer lists.
export function accuracyMetric(answer) {
  return answer.metrics[0] ?? null;
}

// An accuracy cell: "provisional" while labels may still change it, "unlabelled" when no
// label has come, else "settled".
export function accuracyState(cell, metric) {
  if (cell.values[metric] === undefined) return "unlabelled";
  return cell.provisional > 0 ? "provisional" : "settled";
}

export function accuracyText(cell, metric, cellSeconds) {
  const state = accuracyState(cell, metric);
  const coverage = `label coverage ${fmt(cell.label_coverage)}`;
  const value = cell.values[metric];
  const figure = value === undefined ? "no label yet" : `${metric} ${fmt(value)}`;
  const note =
    state === "provisional"
      ? cell.windows > 1
        ? `; ${cell.provisional} of ${cell.windows} windows provisional: labels may still come`
        : "; provisional: labels may still come"
      : "";
  return `${span(cell, cellSeconds)}: ${figure}, ${coverage}${note}`;
}

// The words of an overview row's drift and accuracy.
export function driftSummary(drift) {
  if (!drift) return "–";
  const verdict = drift.dataset_drift ? "dataset drift" : "no dataset drift";
  return `${fmt(drift.drift_share)} (${verdict})`;
}

export function accuracySummary(accuracy) {
  if (!accuracy) return "–";
  const coverage =
    accuracy.label_coverage === null ? "" : `, coverage ${fmt(accuracy.label_coverage)}`;
  const name = accuracy.metric === "prediction_accuracy" ? "" : `${accuracy.metric} `;
  return `${name}${fmt(accuracy.value)}${coverage}`;
}
