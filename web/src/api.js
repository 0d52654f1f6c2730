// The query API, from this origin only. A session cookie (HttpOnly) is set
// at sign-in; the CSRF token given then is kept in this browser's storage
// and sent on every request that changes something.

const CSRF_KEY = 'istv.csrf';

/** An error answer: its HTTP status and the API's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function csrf() {
  try {
    return localStorage.getItem(CSRF_KEY);
  } catch {
    return null;
  }
}

/** True when this browser signed in before (the session may have ended). */
export function hadSession() {
  return csrf() !== null;
}

/** Forgets the session's CSRF token. */
export function forgetSession() {
  try {
    localStorage.removeItem(CSRF_KEY);
  } catch {
    // storage refused: nothing kept
  }
}

/** Calls the API; JSON answers are parsed, `text: true` returns the text. */
export async function api(path, { method = 'GET', body, text = false } = {}) {
  const headers = { Accept: text ? 'text/csv' : 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const token = csrf();
  if (method !== 'GET' && token) headers['X-CSRF-Token'] = token;
  const answer = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (answer.status === 204) return null;
  const raw = await answer.text();
  if (!answer.ok) {
    let message = raw;
    try {
      message = JSON.parse(raw).error || raw;
    } catch {
      // not JSON: the text as it came
    }
    throw new ApiError(answer.status, message);
  }
  return text ? raw : JSON.parse(raw);
}

/** Signs in; the caller as `/api/v1/me` describes it. */
export async function signIn(user, password) {
  const me = await api('/api/v1/session', { method: 'POST', body: { user, password } });
  try {
    localStorage.setItem(CSRF_KEY, me.csrf_token);
  } catch {
    // storage refused: state-changing requests will ask to sign in again
  }
  delete me.csrf_token;
  return me;
}

/** Signs out (ends the session on the server too). */
export async function signOut() {
  try {
    await api('/api/v1/session', { method: 'DELETE' });
  } finally {
    forgetSession();
  }
}
