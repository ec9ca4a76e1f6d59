// The real-time connection: a WebSocket authenticated by its first frame,
// or, when WebSocket cannot be opened on this network, the fallback of
// Server-Sent Events (GET /v1/events, read with fetch so that the token
// goes in a header) plus one POST /v1/frames per client frame.
//
// The connection reconnects by itself with exponential backoff and jitter,
// sooner when the browser says it is back online, and after the delay a
// draining server asks for. Requests are matched to answers by ref.

import { ApiError, NetworkError, SessionEnded } from './api.js';

const READY_TIMEOUT_MS = 10_000; // the server closes unauthenticated sockets after 10 s
const PING_EVERY_MS = 25_000;
const PONG_TIMEOUT_MS = 10_000;
const STREAM_SILENCE_MS = 50_000; // the event stream has a ": ping" every 20 s
const RETRY_WEBSOCKET_MS = 5 * 60_000; // after falling back, try WebSocket again this much later

/** An error frame answering a request. */
export class FrameError extends Error {
  constructor(f) {
    super(f.message || f.code);
    this.code = f.code;
    this.retryAfter = f.retry_after;
    this.cursor = f.cursor;
  }
}

/** The request could not be answered: no connection, or it dropped or timed out. */
export class NotConnected extends Error {}

class LinkFailed extends Error {
  constructor(message, { noReady = false, refused = '' } = {}) {
    super(message);
    this.noReady = noReady; // the link never became ready (not a token problem)
    this.refused = refused; // the token was refused with this code
  }
}

/** Full-jitter exponential backoff: 0.5–1 × min(30 s, 1 s × 2^attempt). */
export function backoff(attempt) {
  return Math.min(30_000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

export class Connection {
  #api;
  #handlers;
  #link = null;
  #stopped = true;
  #wake = null;
  #wsFailures = 0;
  #sseSince = 0;
  #refs = 0;

  /**
   * handlers: onFrame(frame) for every pushed frame; onUp() after each
   * ready; onState(state, {retryAt, transport}) with state "connecting",
   * "online" or "offline"; onSessionEnded().
   */
  constructor(api, handlers) {
    this.#api = api;
    this.#handlers = handlers;
    this.state = 'offline';
    this.transport = 'websocket';
    this.retryAt = 0;
    this.onOffline = () => this.#link?.close('offline');
    this.onOnline = () => this.retryNow();
  }

  start() {
    if (!this.#stopped) return;
    this.#stopped = false;
    addEventListener('offline', this.onOffline);
    addEventListener('online', this.onOnline);
    this.#run();
  }

  stop() {
    this.#stopped = true;
    removeEventListener('offline', this.onOffline);
    removeEventListener('online', this.onOnline);
    this.#link?.close('stopped');
    this.#wake?.();
  }

  /** Ends a reconnect wait early. */
  retryNow() {
    this.#wake?.();
  }

  get online() {
    return this.state === 'online';
  }

  /** Sends a frame with a fresh ref; resolves to the answer, rejects with FrameError or NotConnected. */
  request(frame, timeout = 15_000) {
    if (!this.#link) return Promise.reject(new NotConnected('not connected'));
    return this.#link.request({ ...frame, ref: 'r' + ++this.#refs }, timeout);
  }

  /** Sends a frame that needs no answer (typing, presence); false when not connected. */
  notify(frame) {
    if (!this.#link) return false;
    this.#link.notify(frame);
    return true;
  }

  #setState(state, retryAt = 0) {
    this.state = state;
    this.retryAt = retryAt;
    this.#handlers.onState(state);
  }

  async #run() {
    let attempt = 0;
    while (!this.#stopped) {
      this.#setState('connecting');
      let end = {};
      try {
        const link = await this.#open();
        if (this.#stopped) {
          link.close('stopped');
          return;
        }
        attempt = 0;
        this.#link = link;
        this.transport = link.kind;
        this.#setState('online');
        this.#handlers.onUp();
        end = await link.ended;
      } catch (e) {
        if (e instanceof SessionEnded) {
          this.#stopped = true;
          this.#handlers.onSessionEnded();
          return;
        }
        end = { error: e };
      }
      this.#link = null;
      if (this.#stopped) return;
      if (end.revoked) {
        this.#stopped = true;
        this.#handlers.onSessionEnded();
        return;
      }
      const delay = end.afterMs ?? backoff(attempt++);
      this.#setState('offline', Date.now() + delay);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  async #open() {
    if (this.#sseSince && Date.now() - this.#sseSince > RETRY_WEBSOCKET_MS) {
      this.#sseSince = 0;
      this.#wsFailures = 0;
    }
    const token = await this.#api.token();
    if (this.#wsFailures >= 2 || localStorage.getItem('natter.transport') === 'sse') return this.#openSSE();
    try {
      const link = await openWebSocket(token, (f) => this.#handlers.onFrame(f));
      this.#wsFailures = 0;
      return link;
    } catch (e) {
      if (e.refused) {
        await this.#api.refresh(); // throws SessionEnded when the session is over
        throw e;
      }
      // WebSocket failed although the server answers HTTP: it is blocked on
      // the way (proxy, firewall). Twice in a row means fall back.
      if (e.noReady && (await reachable()) && ++this.#wsFailures >= 2) {
        this.#sseSince = Date.now();
        return this.#openSSE();
      }
      throw e;
    }
  }

  async #openSSE() {
    try {
      return await openEventStream(this.#api, (f) => this.#handlers.onFrame(f));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) await this.#api.refresh();
      else {
        // The fallback fails too, so WebSocket was not (only) the problem: try it first again.
        this.#wsFailures = 0;
        this.#sseSince = 0;
      }
      throw e;
    }
  }
}

async function reachable() {
  try {
    const res = await fetch('/healthz', { cache: 'no-store', signal: AbortSignal.timeout(5_000) });
    return res.ok;
  } catch {
    return false;
  }
}

// A link is one open transport: {kind, ended, request, notify, close}.
// ended resolves once, with {afterMs?, revoked?}, when it closes for any
// reason; close() ends it at once and fails its unanswered requests.

function openWebSocket(token, onFrame) {
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/ws';
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const pending = new Map();
    let ready = false;
    let closed = false;
    let refused = '';
    let afterMs;
    let endWith;
    const ended = new Promise((r) => (endWith = r));
    let pinger = 0;

    const finish = (why, end) => {
      if (closed) return;
      closed = true;
      clearTimeout(readyTimer);
      clearInterval(pinger);
      for (const p of pending.values()) p.reject(new NotConnected(why));
      pending.clear();
      ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
      if (!ready) reject(new LinkFailed(why, { noReady: !refused, refused }));
      endWith(end);
    };
    const readyTimer = setTimeout(() => finish('no ready frame', {}), READY_TIMEOUT_MS);

    const link = {
      kind: 'websocket',
      ended,
      request(frame, timeout) {
        return new Promise((res, rej) => {
          if (closed || ws.readyState !== WebSocket.OPEN) return rej(new NotConnected('not connected'));
          const timer = setTimeout(() => {
            pending.delete(frame.ref);
            rej(new NotConnected('no answer in time'));
          }, timeout);
          pending.set(frame.ref, {
            resolve: (f) => (clearTimeout(timer), f.type === 'error' ? rej(new FrameError(f)) : res(f)),
            reject: (e) => (clearTimeout(timer), rej(e)),
          });
          ws.send(JSON.stringify(frame));
        });
      },
      notify(frame) {
        if (!closed && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
      },
      close(why = 'closed') {
        finish(why, {});
      },
    };

    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', ref: 'auth', token }));
    ws.onmessage = (ev) => {
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (f.ref !== undefined && pending.has(f.ref)) {
        const p = pending.get(f.ref);
        pending.delete(f.ref);
        p.resolve(f);
        return;
      }
      if (!ready && f.type === 'ready') {
        ready = true;
        clearTimeout(readyTimer);
        pinger = setInterval(() => {
          link.request({ type: 'ping', ref: 'ping' + Date.now() }, PONG_TIMEOUT_MS).catch(() => finish('no pong', {}));
        }, PING_EVERY_MS);
        resolve(link);
        return;
      }
      if (f.type === 'error' && f.ref === 'auth') {
        refused = f.code || 'unauthenticated';
        return;
      }
      if (f.type === 'reconnect') {
        afterMs = f.after_ms;
        return;
      }
      onFrame(f);
    };
    ws.onclose = (ev) => finish('closed (' + ev.code + ')', { afterMs, revoked: ev.code === 4003 });
  });
}

async function openEventStream(api, onFrame) {
  const abort = new AbortController();
  const res = await api.events(abort.signal);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  return new Promise((resolve, reject) => {
    let ready = false;
    let closed = false;
    let conn = '';
    let endWith;
    const ended = new Promise((r) => (endWith = r));
    const end = {};
    let silence = 0;
    const readyTimer = setTimeout(() => abort.abort(), READY_TIMEOUT_MS);
    const alive = () => {
      clearTimeout(silence);
      silence = setTimeout(() => abort.abort(), STREAM_SILENCE_MS);
    };

    const post = (frame, timeout) =>
      api.request('POST', '/v1/frames', frame, { headers: { 'X-Natter-Conn': conn }, timeout }).catch((e) => {
        throw e instanceof NetworkError ? new NotConnected(e.message) : e;
      });
    const link = {
      kind: 'sse',
      ended,
      async request(frame, timeout) {
        if (closed) throw new NotConnected('not connected');
        const f = await post(frame, timeout);
        if (f?.type === 'error') throw new FrameError(f);
        return f;
      },
      notify(frame) {
        if (!closed) post(frame, 10_000).catch(() => {});
      },
      close() {
        abort.abort();
      },
    };

    const dispatch = (data) => {
      let f;
      try {
        f = JSON.parse(data);
      } catch {
        return;
      }
      if (!ready) {
        if (f.type !== 'ready') return;
        ready = true;
        conn = f.conn;
        clearTimeout(readyTimer);
        resolve(link);
        return;
      }
      if (f.type === 'reconnect') end.afterMs = f.after_ms;
      else if (f.type === 'error' && f.code === 'unauthenticated' && f.ref === undefined) end.revoked = true;
      else onFrame(f);
    };

    (async () => {
      let buf = '';
      let data = [];
      alive();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          alive();
          buf += value;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).replace(/\r$/, '');
            buf = buf.slice(nl + 1);
            if (line === '') {
              if (data.length) dispatch(data.join('\n'));
              data = [];
            } else if (line.startsWith('data:')) {
              data.push(line.slice(line[5] === ' ' ? 6 : 5));
            }
          }
        }
      } catch {
        // aborted or the network failed: the stream is over either way
      }
      closed = true;
      clearTimeout(silence);
      clearTimeout(readyTimer);
      abort.abort();
      if (!ready) reject(new LinkFailed('event stream ended before ready', { noReady: true }));
      endWith(end);
    })();
  });
}
