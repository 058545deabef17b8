// The admin API client: JSON in and out, the CSRF token on every change, errors as ApiError.
// The session itself is the HttpOnly cookie; the CSRF token lives only in this module's memory.

export class ApiError extends Error {
  constructor({ status, code, message, field = null, retryAfter = null, stale = false }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
    // An edit sent with the record's version that someone else changed or deleted meanwhile
    // (a 409 for a taken name or a running import is not stale: its message says what to do).
    this.stale = stale;
  }
}

let session = null;

export function currentSession() {
  return session;
}

function loginRedirect() {
  const here = location.hash.replace(/^#/, "");
  if (here.startsWith("/login")) return;
  const next = here && here !== "/" ? `?next=${encodeURIComponent(here)}` : "";
  location.hash = `#/login${next}`;
}

function buildQuery(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  const entries = query instanceof URLSearchParams ? query.entries() : Object.entries(query);
  for (const [name, value] of entries) {
    if (value === undefined || value === null || value === "") continue;
    params.append(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

async function errorFrom(response, sentVersion = false) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const detail = body && typeof body.error === "object" && body.error ? body.error : {};
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  const retryAfter = Number.isFinite(retry) ? retry : null;
  let message = detail.message || response.statusText || `HTTP ${response.status}`;
  if (response.status === 429) {
    message = `Too many attempts, retry in ${retryAfter ?? "a few"} s.`;
  }
  const stale =
    response.status === 409 && sentVersion && / by someone else\b/.test(detail.message || "");
  return new ApiError({
    status: response.status,
    code: detail.code || `http_${response.status}`,
    message,
    field: detail.field || null,
    retryAfter,
    stale,
  });
}

async function send(method, path, { body, query, version } = {}, { redirectOn401 = true } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET" && method !== "HEAD" && session) headers["X-CSRF-Token"] = session.csrf_token;
  if (version !== undefined && version !== null) headers["If-Match"] = String(version);
  let response;
  try {
    response = await fetch(path + buildQuery(query), init);
  } catch (cause) {
    throw new ApiError({ status: 0, code: "network", message: `The server cannot be reached (${cause.message}).` });
  }
  if (response.status === 401 && redirectOn401) {
    session = null;
    loginRedirect();
  }
  if (!response.ok) throw await errorFrom(response, version !== undefined && version !== null);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Calls the admin API; `path` is absolute ("/admin/api/keys"). Returns parsed JSON or null (204). */
export function api(method, path, options = {}) {
  return send(method, path, options);
}

/** Logs in with an admin key; throws ApiError (401 wrong key, 429 throttled). */
export async function login(key) {
  session = await send("POST", "/admin/session", { body: { key } }, { redirectOn401: false });
  return session;
}

/** Ends the session (the server clears the cookie); forgets it here whatever the answer. */
export async function logout() {
  try {
    if (session) await send("DELETE", "/admin/session", {}, { redirectOn401: false });
  } finally {
    session = null;
  }
}

/** The live session from the cookie, or null (no redirect: the caller decides). */
export async function loadSession() {
  try {
    session = await send("GET", "/admin/session", {}, { redirectOn401: false });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session = null;
      return null;
    }
    throw error;
  }
  return session;
}
