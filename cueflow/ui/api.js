// The REST client: the public /v1 API with the API key of this browser session.

const KEY = "cueflow.apiKey";
// The API lives next to /ui/, so a reverse proxy may serve both under any prefix.
const ROOT = new URL("../", document.baseURI);

/**
 * An error answer of the API, from its {"error": {code, message, status, details}} envelope;
 * ``details`` lists a validation error's failing fields ([{field, message}]).
 */
export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** The absolute URL of an API path (the API lives next to /ui/). */
export function apiUrl(path) {
  return new URL(path.replace(/^\//, ""), ROOT);
}

/** The signed-in API key, or null. It lives in sessionStorage: closing the tab forgets it. */
export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/**
 * Call the API with the session's key; resolves to the parsed JSON body (null for 204),
 * rejects with ApiError. A 401 also announces "cueflow:unauthorized" (the key stopped working).
 */
export function api(method, path, body) {
  return request(method, path, body, apiKey(), true);
}

/** The account of ``key`` (GET /v1/auth/me) without signing in with it; rejects on 401. */
export function accountOf(key) {
  return request("GET", "/v1/auth/me", undefined, key, false);
}

async function request(method, path, body, key, announce) {
  const headers = { Authorization: `Bearer ${key ?? ""}`, Accept: "application/json" };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method === "DELETE") headers["X-Confirm-Destructive"] = "true";
  let response;
  try {
    response = await fetch(apiUrl(path), init);
  } catch {
    throw new ApiError(0, "network_error", "The server cannot be reached.");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401 && announce) window.dispatchEvent(new CustomEvent("cueflow:unauthorized"));
    throw new ApiError(response.status, error.code || "http_error", error.message || response.statusText, error.details || []);
  }
  return data;
}

/** A query string from an object, skipping empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
