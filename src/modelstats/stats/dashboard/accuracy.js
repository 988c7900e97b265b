// The accuracy of a model version per window (an /accuracy answer) and, under it, the label
// coverage it was figured from: two uPlot charts over the range, their cursors in step.
// Windows whose labels may still come are provisional: hollow points, paler bars, and a
// hatched band across both charts, so a figure that may still move is never read as final.
/* global uPlot */

import { axisLabel, fmt } from "./format.js";
import { accuracyMetric, accuracyState, accuracyText } from "./grades.js";

const COLOURS = { settled: "#1f6fd0", provisional: "#8a5a00", coverage: "#7a8696" };
const HEIGHT = 190;
const COVERAGE_HEIGHT = 150;
// The y axes' width and the right padding: the drift strip's name column and its right margin
// are as wide (app.css), so that a window sits at one x in the strip and in the charts.
export const AXIS_SIZE = 150;
const PADDING = [12, 12, 0, 0];

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// A column per series, null where a cell is not of that kind.
function columns(answer, metric) {
  const half = answer.cell_seconds / 2;
  const states = answer.cells.map((c) => accuracyState(c, metric));
  const pick = (values, state) => values.map((v, i) => (states[i] === state ? v : null));
  const values = answer.cells.map((c) => c.values[metric] ?? null);
  const coverage = answer.cells.map((c) => c.label_coverage);
  return {
    states,
    accuracy: [
      answer.cells.map((c) => Date.parse(c.time) / 1000 + half),
      values,
      pick(values, "settled"),
      pick(values, "provisional"),
    ],
    coverage: [
      answer.cells.map((c) => Date.parse(c.time) / 1000 + half),
      coverage.map((v, i) => (states[i] === "provisional" ? null : v)),
      pick(coverage, "provisional"),
    ],
  };
}

// The cells whose labels may still come (figured or not yet) as [from, to] spans in seconds,
// neighbours merged.
export function provisionalSpans(answer) {
  const spans = [];
  answer.cells.forEach((found) => {
    if (!found.provisional) return;
    const from = Date.parse(found.time) / 1000;
    const to = from + answer.cell_seconds;
    const last = spans.at(-1);
    if (last && last[1] >= from) last[1] = to;
    else spans.push([from, to]);
  });
  return spans;
}

function drawBands(u, spans, labelled) {
  u.under.querySelectorAll(".provisional-band").forEach((band) => band.remove());
  for (const [from, to] of spans) {
    const left = Math.max(0, u.valToPos(from, "x"));
    const right = Math.min(u.under.clientWidth, u.valToPos(to, "x"));
    if (right <= left) continue;
    const band = element("div", undefined, "provisional-band");
    band.style.left = `${left}px`;
    band.style.width = `${right - left}px`;
    band.dataset.from = new Date(from * 1000).toISOString();
    band.dataset.to = new Date(to * 1000).toISOString();
    if (labelled) band.appendChild(element("span", "provisional", "band-label"));
    u.under.appendChild(band);
  }
}

function xAxis(figure) {
  return {
    space: 70,
    values: (u, splits, axisIdx, space, step) => {
      const labels = splits.map((s, i) => axisLabel(new Date(s * 1000), step, i === 0));
      figure.dataset.xLabels = JSON.stringify(labels);
      return labels;
    },
  };
}

function points(colour, hollow) {
  return { size: 7, stroke: colour, fill: hollow ? "#fff" : colour, width: 2 };
}

function accuracyOptions(spec, metric, figure) {
  const value = (u, v) => (v === null ? "–" : fmt(v));
  return {
    width: 600,
    height: HEIGHT,
    scales: {
      x: { time: true, range: () => [spec.since, spec.until] },
      y: metric === "prediction_accuracy" ? { range: [0, 1] } : {},
    },
    series: [
      { label: "time" },
      {
        label: metric,
        stroke: COLOURS.settled,
        width: 1.5,
        spanGaps: false,
        value,
        points: { show: false },
      },
      { label: "settled", stroke: "transparent", value, points: points(COLOURS.settled, false) },
      {
        label: "provisional",
        stroke: "transparent",
        value,
        points: points(COLOURS.provisional, true),
      },
    ],
    axes: [
      { ...xAxis(figure), show: false },
      { size: AXIS_SIZE, values: (u, s) => s.map(fmt) },
    ],
  };
}

function coverageOptions(spec, figure) {
  const bars = uPlot.paths.bars({ size: [0.8, 24] });
  return {
    width: 600,
    height: COVERAGE_HEIGHT,
    scales: { x: { time: true, range: () => [spec.since, spec.until] }, y: { range: [0, 1] } },
    series: [
      { label: "time" },
      {
        label: "coverage",
        stroke: COLOURS.coverage,
        fill: "#a9b4c2",
        paths: bars,
        points: { show: false },
      },
      {
        label: "coverage (provisional)",
        stroke: COLOURS.provisional,
        fill: "rgba(242, 193, 92, 0.55)",
        paths: bars,
        points: { show: false },
      },
    ],
    axes: [
      { ...xAxis(figure), label: "time (UTC)" },
      { size: AXIS_SIZE, values: (u, s) => s.map(fmt), splits: () => [0, 0.5, 1] },
    ],
  };
}

// spec: {answer, since, until (seconds), onZoom(from, to)}.
export function accuracyCharts(spec) {
  const { answer } = spec;
  const metric = accuracyMetric(answer);
  const figure = element("figure", undefined, "chart accuracy");
  figure.dataset.metric = metric;
  const key = element("div", undefined, "legend");
  key.append(
    element("span", `${metric} per window`, "key line"),
    element("span", "settled", "key dot"),
    element("span", "provisional: labels may still come", "key hollow"),
    element("span", "label coverage (bars)", "key band"),
  );
  const top = element("div");
  const bottom = element("div");
  const caption = `${metric} per window, and under it the label coverage it was figured from`;
  figure.append(element("figcaption", caption), key, top, bottom);
  const data = columns(answer, metric);
  const spans = provisionalSpans(answer);
  const tip = element("div", undefined, "tooltip");
  tip.hidden = true;
  let hovered = null;
  const showTip = (u) => {
    const idx = u.cursor.idx;
    if (hovered !== u || idx === null || idx === undefined) return;
    tip.textContent = accuracyText(answer.cells[idx], metric, answer.cell_seconds);
    tip.hidden = false;
    const flip = u.cursor.left > u.over.clientWidth / 2;
    tip.style.left = flip ? "" : `${u.cursor.left + 12}px`;
    tip.style.right = flip ? `${u.over.clientWidth - u.cursor.left + 12}px` : "";
    tip.style.top = `${Math.min(u.cursor.top, u.over.clientHeight - 20)}px`;
    u.over.appendChild(tip);
  };
  const zoom = (u) => {
    if (hovered === u && u.select.width > 4) {
      const from = u.posToVal(u.select.left, "x");
      spec.onZoom(from, u.posToVal(u.select.left + u.select.width, "x"));
    }
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  };
  const shared = (labelled) => ({
    cursor: { drag: { x: true, y: false, setScale: false }, sync: { key: "modelstats" } },
    legend: { show: false },
    padding: PADDING,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    hooks: {
      draw: [(u) => drawBands(u, spans, labelled)],
      setCursor: [showTip],
      setSelect: [zoom],
    },
  });
  const charts = [
    new uPlot({ ...accuracyOptions(spec, metric, figure), ...shared(true) }, data.accuracy, top),
    new uPlot({ ...coverageOptions(spec, figure), ...shared(false) }, data.coverage, bottom),
  ];
  for (const u of charts) {
    u.over.addEventListener("mouseenter", () => {
      hovered = u;
    });
    u.over.addEventListener("mouseleave", () => {
      hovered = null;
      tip.hidden = true;
    });
  }
  const resize = () => {
    const width = Math.max(300, top.clientWidth);
    if (width === charts[0].width) return;
    charts[0].setSize({ width, height: HEIGHT });
    charts[1].setSize({ width, height: COVERAGE_HEIGHT });
  };
  // Whatever changes the width (the page's scrollbar coming, the window), the plots follow:
  // they must stay as wide as the drift strip above them.
  const watcher = new ResizeObserver(resize);
  watcher.observe(top);
  return {
    figure,
    resize,
    destroy: () => {
      watcher.disconnect();
      charts.forEach((u) => u.destroy());
    },
  };
}
