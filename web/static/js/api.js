// REST access and the login session.
//
// The refresh token (and the user it belongs to) is kept in localStorage so
// that a session survives a reload; the access token lives only in memory.
// Tokens never go into a URL. Refreshing is serialised across tabs with a
// Web Lock, and every refresh reads the newest refresh token from storage,
// so two tabs never present the same (rotated) token twice.

const SESSION_KEY = 'natter.session';
const REFRESH_EARLY_MS = 60_000; // refresh this long before the access token expires

/** An error answer of the API: code is the stable protocol error code. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || 'http_' + status;
    this.retryAfter = body?.retry_after;
    this.cursor = body?.cursor;
  }
}

/** The server could not be reached (offline, connection refused, timeout). */
export class NetworkError extends Error {}

/** The session is over (logged out, revoked, refresh token expired or reused). */
export class SessionEnded extends Error {}

function readSession() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY));
    return s && typeof s.refresh_token === 'string' && s.user ? s : null;
  } catch {
    return null;
  }
}

async function withLock(name, fn) {
  // Web Locks exist only in secure contexts (https, localhost).
  return navigator.locks ? navigator.locks.request(name, fn) : fn();
}

export class Api extends EventTarget {
  #access = '';
  #accessExpires = 0;
  #refreshing = null;
  #timer = 0;

  constructor() {
    super();
    this.user = readSession()?.user ?? null;
    addEventListener('storage', (e) => {
      if (e.key === SESSION_KEY && !readSession() && this.user) this.#end();
    });
  }

  /** True when a session is stored (it may still turn out to be over). */
  get hasSession() {
    return readSession() !== null;
  }

  register(username, password) {
    return this.#start('/v1/accounts', username, password);
  }

  login(username, password) {
    return this.#start('/v1/sessions', username, password);
  }

  async #start(path, username, password) {
    const auth = await this.#fetch('POST', path, { username, password, device: deviceLabel() });
    this.#adopt(auth);
    return auth.user;
  }

  /** Revokes the session on the server (best effort) and forgets it here. */
  async logout() {
    try {
      await this.#fetch('DELETE', '/v1/sessions/current', undefined, await this.token(), { timeout: 5_000 });
    } catch {
      // Offline or already revoked: forgetting the tokens is what matters.
    }
    this.#end();
  }

  /** A valid access token, refreshed first when it is about to expire. */
  async token() {
    if (this.#access && Date.now() < this.#accessExpires - 30_000) return this.#access;
    return this.refresh();
  }

  /** Rotates the tokens; one refresh at a time per tab, and per browser with Web Locks. */
  refresh() {
    this.#refreshing ??= withLock('natter-refresh', () => this.#rotate()).finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  async #rotate() {
    const stored = readSession();
    if (!stored) {
      this.#end();
      throw new SessionEnded('not logged in');
    }
    let auth;
    try {
      auth = await this.#fetch('POST', '/v1/sessions/refresh', { refresh_token: stored.refresh_token });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        this.#end();
        throw new SessionEnded(e.message);
      }
      throw e;
    }
    this.#adopt(auth);
    return auth.access_token;
  }

  #adopt(auth) {
    localStorage.setItem(SESSION_KEY, JSON.stringify({ refresh_token: auth.refresh_token, user: auth.user }));
    this.user = auth.user;
    this.#access = auth.access_token;
    this.#accessExpires = Date.parse(auth.access_expires_at);
    clearTimeout(this.#timer);
    const wait = Math.max(5_000, this.#accessExpires - Date.now() - REFRESH_EARLY_MS);
    this.#timer = setTimeout(() => this.refresh().catch(() => {}), wait);
  }

  #end() {
    clearTimeout(this.#timer);
    const had = this.user !== null;
    localStorage.removeItem(SESSION_KEY);
    this.#access = '';
    this.#accessExpires = 0;
    this.user = null;
    if (had) this.dispatchEvent(new Event('ended'));
  }

  /**
   * An authenticated request; refreshes the token once on token_expired.
   * Resolves to the decoded body (null for 204); rejects with ApiError,
   * NetworkError or SessionEnded.
   */
  async request(method, path, body, opts = {}) {
    try {
      return await this.#fetch(method, path, body, await this.token(), opts);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'token_expired')) throw e;
      this.#access = '';
      return this.#fetch(method, path, body, await this.refresh(), opts);
    }
  }

  /**
   * An authenticated request whose answer is not JSON (an image, a ZIP):
   * resolves to the Response once its status is a success, before the body
   * is read. body is sent as is (a Blob or File); timeout 0 means none, so
   * a long download is bounded only by signal. Refreshes the token once on
   * token_expired; rejects with ApiError, NetworkError or SessionEnded.
   */
  async raw(method, path, { body, headers = {}, timeout = 30_000, signal } = {}) {
    const send = async (token) => {
      const signals = [signal, timeout ? AbortSignal.timeout(timeout) : null].filter(Boolean);
      let res;
      try {
        res = await fetch(path, {
          method,
          body,
          headers: { ...headers, Authorization: 'Bearer ' + token },
          cache: 'no-store',
          signal: signals.length ? AbortSignal.any(signals) : undefined,
        });
      } catch (e) {
        throw new NetworkError(e.message);
      }
      if (!res.ok) throw new ApiError(res.status, (await res.json().catch(() => null))?.error);
      return res;
    };
    try {
      return await send(await this.token());
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'token_expired')) throw e;
      this.#access = '';
      return send(await this.refresh());
    }
  }

  /** Forgets the session here without asking the server (after the account was deleted). */
  forget() {
    this.#end();
  }

  /** Opens the fallback event stream (GET /v1/events); resolves to the Response. */
  async events(signal) {
    const open = async (token) => {
      let res;
      try {
        res = await fetch('/v1/events', { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store', signal });
      } catch (e) {
        throw new NetworkError(e.message);
      }
      if (!res.ok) throw new ApiError(res.status, (await res.json().catch(() => null))?.error);
      return res;
    };
    try {
      return await open(await this.token());
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'token_expired')) throw e;
      return open(await this.refresh());
    }
  }

  async #fetch(method, path, body, token, { headers = {}, timeout = 30_000 } = {}) {
    const h = { ...headers };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    if (token) h.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        signal: AbortSignal.timeout(timeout),
      });
    } catch (e) {
      throw new NetworkError(e.message);
    }
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, data?.error);
    return data;
  }
}

function deviceLabel() {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom/.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'browser';
  return 'web (' + browser + ')';
}
