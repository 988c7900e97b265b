// The filter controls built from the /models entries of the versions shown: one select per
// label key, one checkbox per metric.

export function fillSelect(node, values, chosen, empty) {
  node.replaceChildren();
  if (empty !== undefined) node.add(new Option(empty, ""));
  for (const value of values) node.add(new Option(value, value));
  node.value = chosen ?? "";
}

// Each label key of these entries and all its values, sorted.
function labelValues(entries) {
  const keys = new Map();
  for (const entry of entries) {
    for (const [key, values] of Object.entries(entry.labels)) {
      keys.set(key, [...new Set([...(keys.get(key) || []), ...values])].sort());
    }
  }
  return keys;
}

// labels: the chosen [key, value] pairs; onChange gets the new pairs.
export function labelSelects(entries, labels, onChange) {
  const chosen = new Map(labels);
  const selects = [];
  const controls = [...labelValues(entries)].map(([key, values]) => {
    const label = document.createElement("label");
    const node = document.createElement("select");
    node.dataset.label = key;
    fillSelect(node, values, chosen.get(key), "any");
    node.onchange = () =>
      onChange(selects.filter((s) => s.value).map((s) => [s.dataset.label, s.value]));
    selects.push(node);
    label.append(`${key} `, node);
    return label;
  });
  return controls;
}

// Series whose labels differ are summed up together unless a filter picks one: say so.
export function mergedLabelsHint(entries, labels) {
  const filtered = new Set(labels.map(([key]) => key));
  const merged = [...labelValues(entries)]
    .filter(([key, values]) => !filtered.has(key) && values.length > 1)
    .map(([key, values]) => `${key} (${values.join(", ")})`);
  return merged.length
    ? `Series with different ${merged.join(" and ")} are merged; pick a value to tell them apart.`
    : "";
}

// metrics: the chosen names, empty for all; onChange gets the new choice.
export function metricBoxes(entries, metrics, onChange) {
  const names = [...new Set(entries.flatMap((entry) => entry.metrics))].sort();
  const boxes = [];
  return names.map((name) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.checked = !metrics.length || metrics.includes(name);
    box.onchange = () => {
      const checked = boxes.filter((b) => b.checked).map((b) => b.value);
      onChange(checked.length === names.length ? [] : checked);
    };
    boxes.push(box);
    label.append(box, ` ${name}`);
    return label;
  });
}
