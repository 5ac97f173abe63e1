// GridMap's API as the app calls it: the session cookie (HttpOnly, set by the log-in page) and
// its CSRF token on every change, answers in the app's language, and each failure sorted by
// what the app should do about it.

import { acceptLanguage, t } from "./i18n.js";

let csrfToken = null;

export function setCsrfToken(token) { csrfToken = token; }

/** True once the session's CSRF token is known (from a fresh /api/v1/me). */
export function hasSession() { return csrfToken !== null; }

/** A failed call. ``kind``: "network" (no answer: try again later), "login" (401: the session
 * has ended; wait for a new log-in), "session" (403 csrf_failed: the session changed, e.g. a
 * log-in in another tab; ask for its token and send again), "busy" (408, 429, 5xx: try again
 * later) or "refused" (any other 4xx: sending again will not help; the message says why). */
export class ApiError extends Error {
  constructor(kind, message, status = null, code = null) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.code = code;
  }
}

function kindOf(status, code) {
  if (status === 401) return "login";
  if (status === 403 && code === "csrf_failed") return "session";
  if (status === 408 || status === 429 || status >= 500) return "busy";
  return "refused";
}

/** Call the API; returns {status, body}. ``body`` may be FormData or an object (sent as JSON). */
export async function call(method, path, { body = null, key = null } = {}) {
  const headers = { "Accept-Language": acceptLanguage(), Accept: "application/json" };
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  if (key) headers["Idempotency-Key"] = key;
  let payload = null;
  if (body instanceof FormData) payload = body;
  else if (body !== null) { payload = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "same-origin", cache: "no-store" });
  } catch (err) {
    throw new ApiError("network", t("network_error"));
  }
  let answer = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) answer = await response.json().catch(() => null);
  if (!response.ok) {
    const message = (answer && (answer.detail || answer.message)) || `HTTP ${response.status}`;
    const text = typeof message === "string" ? message : JSON.stringify(message);
    throw new ApiError(kindOf(response.status, answer && answer.code), response.status >= 500 ? t("server_busy") : text,
      response.status, answer && answer.code);
  }
  return { status: response.status, body: answer };
}

export const get = (path) => call("GET", path).then((r) => r.body);
