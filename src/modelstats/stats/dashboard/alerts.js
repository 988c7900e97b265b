// How the alerts panel words an alert and its changes, in the API's words (docs/alerts.md).

// Every alert carries these labels (its rule, its series, its severity), and the panel shows
// them already; the others are what tells two alerts of one rule and series apart.
const SHOWN_ELSEWHERE = new Set(["alertname", "model", "version", "metric", "severity"]);

// "{env=prod, region=eu}", or "" when the alert has no other labels.
export function labelsText(labels) {
  const pairs = Object.entries(labels || {})
    .filter(([key]) => !SHOWN_ELSEWHERE.has(key))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`);
  return pairs.length ? `{${pairs.join(", ")}}` : "";
}

// A transition as the API names its kind: an alert that stops firing is resolved (its series'
// state goes back to inactive, which the API's `to` says); a repeat is a reminder, no change.
export function transitionText(transition) {
  if (transition.kind === "repeat") return "still firing (notified again)";
  return `${transition.from} → ${transition.kind}`;
}
