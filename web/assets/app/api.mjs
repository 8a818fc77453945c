// The API client: the access token lives in this module's memory only (never in storage);
// the refresh token is an HttpOnly cookie the browser keeps (docs/browser-sessions.md).

const CSRF = { "X-Privia-CSRF": "1" };
// Refresh this long before the access token runs out.
const REFRESH_MARGIN_MS = 60_000;

let accessToken = null;
let currentUser = null;
let refreshTimer = null;
let refreshing = null;
const signedOutListeners = new Set();
const tokenListeners = new Set();

export class ApiError extends Error {
  constructor(status, body, headers) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || "UNKNOWN";
    this.detail = body?.detail || `The server answered ${status}.`;
    const retry = headers?.get("Retry-After");
    this.retryAfterSeconds = retry && /^\d+$/.test(retry) ? Number(retry) : null;
  }
}

export const token = () => accessToken;
export const user = () => currentUser;
export const onSignedOut = (listener) => signedOutListeners.add(listener);
export const onTokenChanged = (listener) => tokenListeners.add(listener);

async function errorFrom(response) {
  let body = null;
  try { body = await response.json(); } catch { /* nginx or a proxy: not JSON */ }
  return new ApiError(response.status, body, response.headers);
}

function accept(session) {
  accessToken = session.access_token;
  if (session.user) currentUser = session.user;
  clearTimeout(refreshTimer);
  const lifetimeMs = (session.expires_in || 900) * 1000;
  refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.max(5_000, lifetimeMs - REFRESH_MARGIN_MS));
  for (const listener of tokenListeners) listener(accessToken);
}

function forget() {
  accessToken = null;
  currentUser = null;
  clearTimeout(refreshTimer);
}

function endSession() {
  const wasSignedIn = accessToken !== null;
  forget();
  if (wasSignedIn) for (const listener of signedOutListeners) listener();
}

/** A new access token from the refresh cookie; true if the session goes on. Concurrent callers share one request. */
export function refresh() {
  refreshing ??= (async () => {
    try {
      const response = await fetch("/api/auth/refresh", { method: "POST", headers: CSRF, credentials: "same-origin" });
      if (response.status === 401) { endSession(); return false; }
      if (!response.ok) throw await errorFrom(response);
      accept(await response.json());
      if (!currentUser) currentUser = await request("GET", "/api/auth/me");
      return true;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function signIn(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { ...CSRF, "X-Privia-Session": "browser", "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await errorFrom(response);
  accept(await response.json());
}

export const login = (email, password) => signIn("/api/auth/login", { email, password });
export const signup = (email, password, fullName) =>
  signIn("/api/auth/signup", { email, password, full_name: fullName || undefined });

export async function logout() {
  const headers = { ...CSRF };
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  try { await fetch("/api/auth/logout", { method: "POST", headers }); } finally { endSession(); }
}

/**
 * fetch() with the access token; one 401 tries a refresh and repeats the request once,
 * a second one ends the session (the app then shows the sign-in page).
 */
export async function authorizedFetch(path, init = {}) {
  if (!accessToken && !(await refresh())) throw new ApiError(401, { detail: "Please sign in.", code: "AUTH" });
  const send = () => fetch(path, { ...init, headers: { ...init.headers, Authorization: `Bearer ${accessToken}` } });
  let response = await send();
  if (response.status === 401) {
    if (!(await refresh())) throw await errorFrom(response);
    response = await send();
    if (response.status === 401) { endSession(); throw await errorFrom(response); }
  }
  return response;
}

/** A JSON request; resolves to the body (null for 204), or to {body, headers} with `withHeaders`. */
export async function request(method, path, body, { withHeaders = false, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await authorizedFetch(path, init);
  if (!response.ok) throw await errorFrom(response);
  const data = response.status === 204 ? null : await response.json();
  return withHeaders ? { body: data, headers: response.headers } : data;
}

export { errorFrom };
