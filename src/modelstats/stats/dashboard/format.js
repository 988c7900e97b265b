// Numbers, units, times and durations as the dashboard shows them.
// Rounded to 4 significant digits on screen; tooltips use exact() so nothing is hidden.

const FOUR_DIGITS = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4 });

export function fmt(value) {
  if (value === null || value === undefined) return "–";
  const size = Math.abs(value);
  if (size !== 0 && (size >= 1e7 || size < 1e-4)) return value.toExponential(3);
  return FOUR_DIGITS.format(value);
}

// A count in full: "44,730".
const WHOLE = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function whole(value) {
  return value === null || value === undefined ? "–" : WHOLE.format(value);
}

export function exact(value) {
  return value === null || value === undefined ? "–" : String(value);
}

export function signed(value) {
  if (value === null || value === undefined) return "–";
  return (value > 0 ? "+" : "") + fmt(value);
}

export function percent(ratio) {
  if (ratio === null || ratio === undefined) return "";
  return (ratio > 0 ? "+" : "") + fmt(ratio * 100) + "%";
}

// The unit a metric's name says it is in (inference_time is reported in milliseconds).
const UNITS = [
  [/(_ms|_millis|_milliseconds)$/, "ms"],
  [/^inference_time$/, "ms"],
  [/(_s|_seconds)$/, "s"],
  [/(_bytes)$/, "B"],
  [/(_pct|_percent)$/, "%"],
];

export function unitOf(metric) {
  for (const [pattern, unit] of UNITS) {
    if (pattern.test(metric)) return unit;
  }
  return "";
}

export function withUnit(text, unit) {
  return unit ? `${text} ${unit}` : text;
}

const pad = (n) => String(n).padStart(2, "0");

// "2026-11-29 22:14 UTC" (seconds only when they are not zero).
export function utc(date) {
  const day = `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
  const seconds = date.getUTCSeconds() ? ":" + pad(date.getUTCSeconds()) : "";
  return `${day} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}${seconds} UTC`;
}

// "19:46:50 UTC": when the page last loaded, on the 24-hour UTC clock of every other time.
export function clock(date) {
  const [h, m, s] = [date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()].map(pad);
  return `${h}:${m}:${s} UTC`;
}

export function local(date) {
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZoneName: "short",
  });
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// A time axis label in UTC: the hour and minute, with the date under the first label and
// where a day starts; only the date when the ticks are days apart.
export function axisLabel(date, stepSeconds, first) {
  const dayName = `${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()}`;
  if (stepSeconds >= 86400) return dayName;
  const clock = `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
  const midnight = date.getUTCHours() === 0 && date.getUTCMinutes() === 0;
  return midnight || first ? `${clock}\n${dayName}` : clock;
}

export function duration(seconds) {
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
  ]) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

// RFC 3339 in UTC without milliseconds, as the API and the page's URL take it.
export function rfc3339(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
