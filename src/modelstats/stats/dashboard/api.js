// The stats API as the page calls it: relative paths (the page is served by the stats function
// itself, possibly under a path prefix) and the bearer token the user gave, if any.

const TOKEN_KEY = "modelstats-token";

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(message, field) {
    super(field ? `${field}: ${message}` : message);
    this.field = field;
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

// params: an array of [name, value] pairs (names may repeat, as label.<key> does).
export async function get(path, params = []) {
  const query = new URLSearchParams(params.filter(([, value]) => value !== null && value !== ""));
  const url = query.toString() ? `${path}?${query}` : path;
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  const response = await fetch(url, { headers, cache: "no-store" });
  if (response.status === 401) {
    throw new Unauthorized("this API needs a token (its STATS_API_TOKEN)");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`${response.status} ${response.statusText} from ${path}`);
  }
  if (!response.ok) throw new ApiError(body.message || response.statusText, body.field);
  return body;
}

export function statsPath(model, version) {
  const base = `stats/${encodeURIComponent(model)}`;
  return version === undefined ? base : `${base}/${encodeURIComponent(version)}`;
}
