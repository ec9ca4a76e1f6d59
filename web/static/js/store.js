// The client's state and the protocol rules that keep it true: the
// conversation list, the loaded history windows, receipts, presence,
// typing, the sync-stream cursor and the outbox of unsent messages.
//
// Everything is applied by change position (pos): a copy is replaced only
// by a newer state, so live frames, sync pages and history may arrive in
// any order. The cursor moves only once a connection has caught up, so a
// dropped connection never skips changes. Messages typed while offline
// wait in the outbox (memory and localStorage) and are sent, with their
// original client_id, after the next catch-up: the server stores each
// client_id once, so nothing is doubled.

import { ApiError } from './api.js';
import { Connection, FrameError, NotConnected } from './transport.js';
import { SignedURLs } from './files.js';
import { AvatarImages } from './avatars.js';
import { Contacts, NotifyLevels, PushPrivacy } from './prefs.js';

const TYPING_EVERY_MS = 3_000;
const TYPING_IDLE_MS = 5_000;
const PAGE = 50;
const PERMANENT = new Set(['invalid_argument', 'too_large', 'not_found', 'forbidden', 'invalid_json', 'blocked', 'conflict']);
const PROFILE_TTL_MS = 5 * 60_000; // refetch after this (changes also arrive as profile frames)

/** A fresh client_id; crypto.randomUUID needs a secure context, getRandomValues does not. */
export function newClientID() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return 'w-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class Store extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.me = api.user;
    this.convs = new Map(); // id -> conversation (server fields + local window)
    this.usernames = new Map(); // user id -> username
    this.profiles = new Map(); // user id -> {user, at} (display names; fetched as needed)
    this.blocked = new Set(); // user ids the user blocked
    this.blockReads = 0; // loadBlocks() calls started: only the newest one's answer is kept
    this.pushPrivacy = new PushPrivacy(api, () => this.#emit('push'));
    this.files = new SignedURLs(api); // signed attachment URLs
    this.avatars = new AvatarImages(api); // avatar thumbnails, per user and avatar id
    this.contacts = new Contacts(api, () => this.#emit('contacts'), (u) => this.#remember(u));
    this.levels = new NotifyLevels(api, (conv) => (this.#emit('list'), this.#emit('conv', conv)));
    this.presence = new Map(); // user id -> {status, last_seen}
    this.typing = new Map(); // conv id -> Map(user id -> expiry timer)
    this.cursor = 0;
    this.loaded = false;
    this.synced = false; // caught up on the current connection
    this.openConv = '';
    this.atBottom = true; // the open conversation shows its newest message
    this.outboxKey = 'natter.outbox.' + this.me.id;
    this.outbox = readJSON(this.outboxKey, []).map((o) => ({ ...o, inflight: false }));
    this.listLoad = null;
    this.upRuns = 0; // catch-ups started; a retry runs only if no newer one did
    this.wasUp = false; // a connection has caught up before (the settings were read then)
    this.receiptTimers = new Map();
    this.refetching = new Set();
    this.typingSent = { conv: '', at: 0, timer: 0 };
    this.usernames.set(this.me.id, this.me.username);
    this.conn = new Connection(api, {
      onFrame: (f) => this.#onFrame(f),
      onUp: () => this.#onUp(),
      onState: () => {
        if (!this.conn.online) this.synced = false;
        this.#emit('status');
      },
      onSessionEnded: () => this.dispatchEvent(new Event('ended')),
    });
    this.onVisibility = () => {
      this.conn.notify({ type: 'presence', status: document.visibilityState === 'visible' ? 'online' : 'away' });
      this.scheduleReceipts(this.openConv);
    };
  }

  start() {
    this.listLoad = this.#loadList().catch(() => {});
    this.loadBlocks().catch(() => {});
    this.contacts.load().catch(() => {});
    this.conn.start();
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  stop() {
    this.conn.stop();
    document.removeEventListener('visibilitychange', this.onVisibility);
    for (const t of this.receiptTimers.values()) clearTimeout(t);
    for (const m of this.typing.values()) for (const t of m.values()) clearTimeout(t);
  }

  #emit(what, conv = '') {
    this.dispatchEvent(new CustomEvent('change', { detail: { what, conv } }));
  }

  // ---- connection lifecycle ----

  /** After each ready: catch up, then send what waited. Retried while the connection lasts. */
  async #onUp() {
    const run = ++this.upRuns;
    try {
      if (!this.loaded) await (this.listLoad ?? this.#loadList());
      if (!this.loaded) await this.#loadList();
      await this.#catchUp();
    } catch (e) {
      if (e instanceof NotConnected) return; // the next ready starts over
      console.warn('natter: catch-up failed; retrying', e);
      setTimeout(() => run === this.upRuns && this.conn.online && this.#onUp(), 3000);
      return;
    }
    this.synced = true;
    this.#emit('status');
    this.#flushOutbox();
    for (const c of this.convs.values()) this.scheduleReceipts(c.id);
    if (document.visibilityState !== 'visible') this.conn.notify({ type: 'presence', status: 'away' });
    this.#refreshPresence().catch(() => {});
    if (this.wasUp) this.#rereadSettings();
    else if (!this.levels.loaded) this.levels.load().catch(() => {}); // failed before (offline at start)
    this.wasUp = true;
  }

  /** Settings frames sent while the connection was down are lost (they are not in the sync stream): read the settings again. */
  #rereadSettings() {
    this.levels.load().catch(() => {});
    this.contacts.load().catch(() => {});
    this.loadBlocks().catch(() => {});
    if (this.pushPrivacy.reads) this.pushPrivacy.load().catch(() => {}); // only once asked for (the settings dialog reads it when it opens)
  }

  async #loadList(cursor) {
    this.levels.load().catch(() => {}); // all levels, in parallel (not awaited): "all" is shown until they arrive
    const { conversations } = await this.api.request('GET', '/v1/conversations');
    const keep = new Set();
    let top = 0;
    for (const c of conversations) {
      keep.add(c.id);
      this.#putConv(c);
      top = Math.max(top, c.pos, c.last_message?.pos ?? 0, ...c.members.map((m) => m.pos));
    }
    for (const id of [...this.convs.keys()]) if (!keep.has(id)) this.#dropConv(id);
    this.cursor = Math.max(this.cursor, cursor ?? top);
    this.loaded = true;
    this.#emit('list');
  }

  /** Pages the sync stream from the cursor; on resync_required reloads and goes on from the given cursor. */
  async #catchUp() {
    let cursor = this.cursor;
    for (;;) {
      let page;
      try {
        page = await this.conn.request({ type: 'changes', cursor, limit: 500 }, 30_000);
      } catch (e) {
        if (!(e instanceof FrameError && e.code === 'resync_required')) throw e;
        await this.#resync(e.cursor);
        cursor = e.cursor;
        continue;
      }
      for (const ch of page.changes) this.#applyChange(ch);
      cursor = Math.max(cursor, page.cursor);
      if (!page.has_more) break;
    }
    this.cursor = Math.max(this.cursor, cursor);
  }

  async #resync(cursor) {
    console.info('natter: resync required; reloading conversations and history');
    for (const c of this.convs.values()) c.msgs = null; // history windows may have gaps now
    await this.#loadList(cursor);
    this.cursor = cursor;
    if (this.openConv && this.convs.has(this.openConv)) await this.openHistory(this.openConv);
    this.#emit('list');
  }

  #advance(cursor) {
    if (this.synced && cursor > this.cursor) this.cursor = cursor;
  }

  // ---- frames and changes ----

  #onFrame(f) {
    // A live frame's cursor (not its pos: in a cluster, frames of
    // different conversations can arrive out of pos order) is where to
    // resume the sync stream from; an ack carries none.
    if (f.cursor && f.type !== 'changes' && f.type !== 'error') this.#advance(f.cursor);
    switch (f.type) {
      case 'message':
      case 'message_updated':
        this.#applyMessage(f.message);
        break;
      case 'receipt':
        this.#applyWatermarks(f.conv, f.user, f.read_seq, f.delivered_seq, f.pos);
        break;
      case 'typing':
        this.#applyTyping(f);
        break;
      case 'presence':
        this.presence.set(f.user, { status: f.status, last_seen: f.last_seen });
        this.#emit('presence');
        break;
      case 'profile': {
        // A live profile change of someone we share a conversation with.
        const old = this.profiles.get(f.user)?.user ?? { id: f.user };
        const user = { ...old, display_name: f.display_name ?? null, status_text: f.status_text ?? '', avatar: f.avatar ?? null };
        this.profiles.set(f.user, { user, at: Date.now() });
        if (!user.avatar) this.avatars.drop(f.user);
        this.#emit('list');
        this.#emit('contacts');
        if (this.openConv) this.#emit('conv', this.openConv);
        break;
      }
      case 'settings':
        this.#applySetting(f);
        break;
      case 'conversation':
        this.#loadConv(f.conversation.id);
        break;
      case 'conversation_updated':
        this.#applyConvFields(f.conversation);
        break;
      case 'members_added':
        this.#loadConv(f.conv);
        break;
      case 'member_removed':
        this.#removeMembers(f.conv, f.users);
        break;
      case 'role_changed': {
        const m = this.convs.get(f.conv)?.members.find((x) => x.user === f.user);
        if (m && f.pos >= m.pos) {
          m.role = f.role;
          m.pos = f.pos;
          this.#emit('conv', f.conv);
        }
        break;
      }
      case 'changes':
        // The event stream's replay (not asked for by this client) or a late page.
        for (const ch of f.changes) this.#applyChange(ch);
        break;
      case 'error':
        if (f.code === 'resync_required') this.#resync(f.cursor).catch(() => {});
        break;
    }
  }

  /** One of the user's own settings changed, on this device or another (not in the sync stream). */
  #applySetting(f) {
    switch (f.what) {
      case 'notification_level':
        this.levels.apply(f.conv, f.level);
        break;
      case 'contact':
        this.contacts.apply(f.user, !!f.on, this.profile(f.user));
        break;
      case 'block':
        this.#applyBlock(f.user, !!f.on);
        this.loadBlocks().catch(() => {}); // a read begun before the change must not undo it
        break;
      case 'push_settings':
        this.pushPrivacy.apply({ hide_text: !!f.hide_text });
        break;
    }
  }

  #applyChange(ch) {
    switch (ch.kind) {
      case 'message':
        this.#applyMessage(ch.message);
        break;
      case 'member':
        this.#applyMember(ch.member);
        break;
      case 'member_left':
        this.#removeMembers(ch.member.conv, [ch.member.user]);
        break;
      case 'conversation':
        this.#applyConvFields(ch.conversation);
        break;
    }
  }

  /** Stores a conversation from the server; an existing one is updated in place (async work holds it). */
  #putConv(c) {
    const old = this.convs.get(c.id);
    for (const m of c.members) if (m.username) this.usernames.set(m.user, m.username);
    if (!old) {
      c.msgs = null; // no history loaded yet
      c.hasOlder = true;
      c.refs = new Map();
      this.convs.set(c.id, c);
      return c;
    }
    for (const m of c.members) {
      const o = old.members.find((x) => x.user === m.user);
      if (o) {
        m.read_seq = Math.max(m.read_seq, o.read_seq);
        m.delivered_seq = Math.max(m.delivered_seq, o.delivered_seq);
      }
    }
    if (old.last_seq > c.last_seq) {
      // A live message overtook this snapshot.
      c.last_seq = old.last_seq;
      c.last_message = old.last_message;
      c.unread = old.unread;
    }
    c.read_seq = Math.max(c.read_seq, old.read_seq);
    for (const key of ['id', 'kind', 'title', 'created_by', 'created_at', 'last_seq', 'pos', 'members', 'last_message', 'read_seq', 'unread']) old[key] = c[key];
    return old;
  }

  #dropConv(id) {
    this.convs.delete(id);
    this.typing.delete(id);
    this.#emit('list');
    this.#emit('conv', id);
  }

  async #loadConv(id) {
    if (this.refetching.has(id)) return;
    this.refetching.add(id);
    try {
      const { conversation } = await this.api.request('GET', '/v1/conversations/' + id);
      this.#putConv(conversation);
      this.#emit('list');
      this.#emit('conv', id);
      if (conversation.kind === 'direct') await this.#refreshPresence([this.peer(conversation)]);
      this.scheduleReceipts(id);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) this.#dropConv(id);
    } finally {
      this.refetching.delete(id);
    }
  }

  #applyConvFields(conv) {
    const c = this.convs.get(conv.id);
    if (!c) {
      this.#loadConv(conv.id);
      return;
    }
    if (conv.pos < c.pos) return;
    c.title = conv.title;
    c.pos = conv.pos;
    this.#emit('list');
    this.#emit('conv', c.id);
  }

  #applyMember(m) {
    const c = this.convs.get(m.conv);
    if (!c) {
      if (m.user === this.me.id) this.#loadConv(m.conv);
      return;
    }
    const old = c.members.find((x) => x.user === m.user);
    if (!old) {
      c.members.push({ ...m, username: this.usernames.get(m.user) });
      if (!this.usernames.has(m.user)) this.#loadConv(c.id);
    } else if (m.pos > old.pos) {
      old.role = m.role;
      old.pos = m.pos;
    }
    this.#applyWatermarks(m.conv, m.user, m.read_seq, m.delivered_seq, 0);
    this.#emit('conv', c.id);
  }

  #removeMembers(convID, users) {
    if (users.includes(this.me.id)) {
      this.#dropConv(convID);
      return;
    }
    const c = this.convs.get(convID);
    if (!c) return;
    c.members = c.members.filter((m) => !users.includes(m.user));
    this.#emit('list');
    this.#emit('conv', convID);
  }

  /** Watermarks only rise, whatever order their news arrives in. */
  #applyWatermarks(convID, user, readSeq, deliveredSeq, pos) {
    const c = this.convs.get(convID);
    const m = c?.members.find((x) => x.user === user);
    if (!m) return;
    m.read_seq = Math.max(m.read_seq, readSeq);
    m.delivered_seq = Math.max(m.delivered_seq, deliveredSeq, m.read_seq);
    if (pos > m.pos) m.pos = pos;
    if (user === this.me.id && m.read_seq > c.read_seq) {
      c.read_seq = m.read_seq;
      this.#recountUnread(c);
    }
    this.#emit('conv', convID);
  }

  #recountUnread(c) {
    if (c.read_seq >= c.last_seq) {
      c.unread = 0;
    } else if (c.msgs && this.#lowest(c) <= c.read_seq + 1) {
      c.unread = [...c.msgs.values()].filter((m) => m.seq > c.read_seq && m.sender !== this.me.id).length;
    } else {
      this.#loadConv(c.id); // the server counts what is not loaded here
    }
    this.#emit('list');
  }

  #applyMessage(m) {
    const c = this.convs.get(m.conv);
    if (!c) {
      this.#loadConv(m.conv);
      return;
    }
    if (m.sender === this.me.id) this.#settle(m.conv, m.client_id);
    let fresh = false;
    let preview = false; // the list's preview changed
    if (m.seq > c.last_seq) {
      fresh = preview = true;
      c.last_seq = m.seq;
      c.last_message = m;
      if (m.sender !== this.me.id && m.seq > c.read_seq) c.unread++;
      this.#stopTyping(c.id, m.sender);
    } else if (c.last_message?.seq === m.seq && m.pos > c.last_message.pos) {
      c.last_message = m;
      preview = true;
    }
    if (c.msgs) {
      const old = c.msgs.get(m.seq);
      if (old ? m.pos > old.pos : m.seq >= this.#lowest(c) || !c.hasOlder) {
        const gap = !old && m.seq > this.#highest(c) + 1 && c.msgs.size > 0;
        c.msgs.set(m.seq, m);
        if (gap) this.#fillGap(c);
      }
    }
    if (c.refs.has(m.id)) c.refs.set(m.id, m);
    if (preview) this.#emit('list');
    this.#emit('conv', c.id);
    if (fresh && m.sender !== this.me.id) this.scheduleReceipts(c.id);
  }

  #lowest(c) {
    let low = Infinity;
    for (const s of c.msgs.keys()) low = Math.min(low, s);
    return low;
  }

  #highest(c) {
    let high = 0;
    for (const s of c.msgs.keys()) high = Math.max(high, s);
    return high;
  }

  async #fillGap(c) {
    if (c.filling) return;
    c.filling = true;
    try {
      for (;;) {
        const after = this.#highestContiguous(c);
        const page = await this.api.request('GET', `/v1/conversations/${c.id}/messages?after=${after}&limit=500`);
        for (const m of page.messages) this.#applyMessage(m);
        if (!page.has_more) break;
      }
    } catch {
      // the next catch-up or opening of the conversation fills it
    } finally {
      c.filling = false;
    }
  }

  #highestContiguous(c) {
    let s = this.#lowest(c);
    while (c.msgs.has(s + 1)) s++;
    return s === Infinity ? 0 : s;
  }

  // ---- typing and presence ----

  #applyTyping(f) {
    if (f.user === this.me.id) return;
    if (f.state === 'start') {
      let users = this.typing.get(f.conv);
      if (!users) this.typing.set(f.conv, (users = new Map()));
      clearTimeout(users.get(f.user));
      users.set(
        f.user,
        setTimeout(() => this.#stopTyping(f.conv, f.user), f.expires_ms || 6000),
      );
      this.#emit('typing', f.conv);
    } else {
      this.#stopTyping(f.conv, f.user);
    }
  }

  #stopTyping(conv, user) {
    const users = this.typing.get(conv);
    if (!users?.has(user)) return;
    clearTimeout(users.get(user));
    users.delete(user);
    this.#emit('typing', conv);
  }

  /** Usernames typing in a conversation now. */
  typists(conv) {
    return [...(this.typing.get(conv)?.keys() ?? [])].map((u) => this.name(u, 'someone'));
  }

  /** Tells the others the user is typing: start at most every 3 s, stop after 5 s idle. */
  typed(conv, hasText) {
    const t = this.typingSent;
    clearTimeout(t.timer);
    if (!hasText) {
      this.stoppedTyping();
      return;
    }
    const now = Date.now();
    if (t.conv !== conv || now - t.at >= TYPING_EVERY_MS) {
      if (t.conv && t.conv !== conv) this.stoppedTyping();
      if (this.conn.notify({ type: 'typing', conv, state: 'start' })) {
        t.conv = conv;
        t.at = now;
      }
    }
    t.timer = setTimeout(() => this.stoppedTyping(), TYPING_IDLE_MS);
  }

  stoppedTyping() {
    const t = this.typingSent;
    clearTimeout(t.timer);
    if (t.conv) this.conn.notify({ type: 'typing', conv: t.conv, state: 'stop' });
    t.conv = '';
    t.at = 0;
  }

  /** Fetches the presence of users (all direct-chat peers when absent). */
  loadPresence(users) {
    return this.#refreshPresence(users);
  }

  async #refreshPresence(users) {
    users ??= [...this.convs.values()].filter((c) => c.kind === 'direct').map((c) => this.peer(c));
    users = [...new Set(users.filter(Boolean))];
    for (let i = 0; i < users.length; i += 200) {
      const { presence } = await this.api.request('GET', '/v1/presence?users=' + users.slice(i, i + 200).join(','));
      for (const p of presence) this.presence.set(p.user, { status: p.status, last_seen: p.last_seen });
    }
    this.#emit('presence');
  }

  // ---- receipts ----

  mine(c) {
    return c.members.find((m) => m.user === this.me.id);
  }

  peer(c) {
    return c.members.find((m) => m.user !== this.me.id)?.user ?? '';
  }

  /** Marks what arrived as delivered, and as read when the user can see it; coalesced. */
  scheduleReceipts(convID) {
    if (!convID || this.receiptTimers.has(convID)) return;
    this.receiptTimers.set(
      convID,
      setTimeout(() => {
        this.receiptTimers.delete(convID);
        this.#sendReceipts(convID);
      }, 30),
    );
  }

  #sendReceipts(convID) {
    const c = this.convs.get(convID);
    const me = c && this.mine(c);
    if (!me || !this.synced) return;
    const seen = this.openConv === convID && this.atBottom && document.visibilityState === 'visible';
    if (seen && c.last_seq > c.read_seq) {
      const seq = c.last_seq;
      c.read_seq = seq;
      this.#recountUnread(c);
      this.conn
        .request({ type: 'read', conv: convID, seq })
        .then((a) => this.#applyWatermarks(convID, this.me.id, a.read_seq, a.delivered_seq, 0))
        .catch(() => {});
    } else if (c.last_seq > me.delivered_seq && c.last_message && c.last_message.sender !== this.me.id) {
      const seq = c.last_seq;
      this.conn
        .request({ type: 'delivered', conv: convID, seq })
        .then((a) => this.#applyWatermarks(convID, this.me.id, a.read_seq, a.delivered_seq, 0))
        .catch(() => {});
    }
  }

  /** "sent", "delivered" or "read" for one of the user's stored messages, with a description. */
  receiptOf(c, m) {
    const others = c.members.filter((x) => x.user !== this.me.id);
    const read = others.filter((x) => x.read_seq >= m.seq).length;
    const got = others.filter((x) => x.delivered_seq >= m.seq).length;
    if (!others.length) return ['sent', 'Sent'];
    if (read === others.length) return ['read', c.kind === 'direct' ? 'Read' : 'Read by everyone'];
    if (got === others.length) return ['delivered', c.kind === 'direct' ? 'Delivered' : `Delivered to everyone, read by ${read}`];
    return ['sent', c.kind === 'direct' ? 'Sent' : `Sent; delivered to ${got} of ${others.length}, read by ${read}`];
  }

  // ---- history ----

  /** Loads the newest page of a conversation, or what is missing since it was last shown. */
  async openHistory(convID) {
    const c = this.convs.get(convID);
    if (!c) return;
    if (!c.msgs) {
      const page = await this.api.request('GET', `/v1/conversations/${convID}/messages?limit=${PAGE}`);
      c.msgs ??= new Map();
      c.hasOlder = page.has_more;
      for (const m of page.messages) if (!c.msgs.has(m.seq) || c.msgs.get(m.seq).pos < m.pos) c.msgs.set(m.seq, m);
      for (const m of page.messages) this.#applyMessage(m); // last message, unread, outbox
    }
    // Messages that arrived live while the page was on its way (or while
    // the conversation was not shown) are missing from the window.
    if (c.last_seq > this.#highestContiguous(c)) await this.#fillGap(c);
    this.#emit('conv', convID);
    this.scheduleReceipts(convID);
  }

  /**
   * Makes sure message seq (and a few before it) is loaded: the window
   * stays one contiguous run of messages, so it grows down to seq.
   */
  async loadAround(convID, seq) {
    const c = this.convs.get(convID);
    if (!c) return;
    if (!c.msgs) await this.openHistory(convID);
    const from = Math.max(0, seq - 10);
    while (this.#lowest(c) > from + 1 && this.#lowest(c) !== Infinity) {
      const low = this.#lowest(c);
      const limit = Math.min(500, low - from - 1);
      const page = await this.api.request('GET', `/v1/conversations/${convID}/messages?before=${low}&limit=${limit}`);
      for (const m of page.messages) if (!c.msgs.has(m.seq) || c.msgs.get(m.seq).pos < m.pos) c.msgs.set(m.seq, m);
      c.hasOlder = page.has_more;
      if (!page.messages.length) break;
    }
    this.#emit('conv', convID);
  }

  /** Loads the page before the oldest loaded message; resolves to false when there is none. */
  async loadOlder(convID) {
    const c = this.convs.get(convID);
    if (!c?.msgs || !c.hasOlder || c.loadingOlder) return false;
    c.loadingOlder = true;
    try {
      const before = this.#lowest(c);
      if (before === Infinity || before <= 1) {
        c.hasOlder = false;
        return false;
      }
      const page = await this.api.request('GET', `/v1/conversations/${convID}/messages?before=${before}&limit=${PAGE}`);
      for (const m of page.messages) if (!c.msgs.has(m.seq) || c.msgs.get(m.seq).pos < m.pos) c.msgs.set(m.seq, m);
      c.hasOlder = page.has_more;
      this.#emit('conv', convID);
      return true;
    } finally {
      c.loadingOlder = false;
    }
  }

  /** The message a reply points to: loaded, fetched once, or null for now. */
  replyTarget(c, id) {
    for (const m of c.msgs?.values() ?? []) if (m.id === id) return m;
    if (c.refs.has(id)) return c.refs.get(id);
    c.refs.set(id, null);
    this.api
      .request('GET', `/v1/conversations/${c.id}/messages/${id}`)
      .then(({ message }) => {
        c.refs.set(id, message);
        this.#emit('conv', c.id);
      })
      .catch(() => {});
    return null;
  }

  // ---- sending ----

  /** Queues a message and sends it when connected. */
  send(convID, text, replyTo, attachments = []) {
    const item = { client_id: newClientID(), conv: convID, text, reply_to: replyTo || undefined, at: new Date().toISOString(), failed: '' };
    if (attachments.length) item.attachments = attachments; // ready uploads: Attachment objects
    this.outbox.push(item);
    this.#saveOutbox();
    this.stoppedTyping();
    this.#emit('conv', convID);
    this.#sendItem(item);
  }

  pending(convID) {
    return this.outbox.filter((o) => o.conv === convID);
  }

  retry(clientID) {
    const item = this.outbox.find((o) => o.client_id === clientID);
    if (!item) return;
    item.failed = '';
    this.#saveOutbox();
    this.#emit('conv', item.conv);
    this.#sendItem(item);
  }

  discard(clientID) {
    const item = this.outbox.find((o) => o.client_id === clientID);
    this.#settle(item?.conv, clientID);
  }

  #flushOutbox() {
    const gone = this.outbox.filter((o) => !this.convs.has(o.conv));
    for (const o of gone) this.#settle(o.conv, o.client_id); // no longer a member: nowhere to send
    for (const item of this.outbox) if (!item.failed) this.#sendItem(item);
  }

  async #sendItem(item) {
    if (item.inflight || !this.synced || !this.convs.has(item.conv)) return;
    item.inflight = true;
    try {
      const frame = { type: 'send', conv: item.conv, client_id: item.client_id, text: item.text };
      if (item.reply_to) frame.reply_to = item.reply_to;
      if (item.attachments) frame.attachments = item.attachments.map((a) => a.id);
      const ack = await this.conn.request(frame, 40_000);
      this.#applyMessage(ack.message);
    } catch (e) {
      if (e instanceof FrameError && PERMANENT.has(e.code)) {
        item.failed = e.code === 'blocked' ? 'this person has blocked you, so your messages are not delivered.' : e.message || e.code;
        this.#saveOutbox();
        this.#emit('conv', item.conv);
      } else if (e instanceof FrameError) {
        // rate_limited or unavailable: the same client_id again, a little later
        setTimeout(() => this.#sendItem(item), (e.retryAfter || 1) * 1000);
      }
      // NotConnected: it stays queued and goes out after the next catch-up.
    } finally {
      item.inflight = false;
    }
  }

  #settle(convID, clientID) {
    const n = this.outbox.length;
    this.outbox = this.outbox.filter((o) => !(o.client_id === clientID && o.conv === convID));
    if (this.outbox.length !== n) {
      this.#saveOutbox();
      this.#emit('conv', convID);
    }
  }

  #saveOutbox() {
    const keep = this.outbox.map(({ inflight, ...o }) => o);
    try {
      localStorage.setItem(this.outboxKey, JSON.stringify(keep));
    } catch {
      // storage full or disabled: the queue still lives in memory
    }
  }

  // ---- actions (REST: they work whenever the server is reachable) ----

  async #messageAction(method, convID, path, body) {
    const { message } = await this.api.request(method, `/v1/conversations/${convID}/messages/${path}`, body);
    this.#applyMessage(message);
    return message;
  }

  edit(convID, id, text) {
    return this.#messageAction('PATCH', convID, id, { text });
  }

  remove(convID, id) {
    return this.#messageAction('DELETE', convID, id);
  }

  react(convID, id, emoji, on) {
    return this.#messageAction(on ? 'PUT' : 'DELETE', convID, `${id}/reactions/${encodeURIComponent(emoji)}`);
  }

  async searchUsers(q, after) {
    const p = new URLSearchParams({ q, limit: '20' });
    if (after) p.set('after', after);
    const res = await this.api.request('GET', '/v1/users?' + p);
    for (const u of res.users) this.#remember(u);
    return res;
  }

  // ---- people: profiles and blocks ----

  /**
   * The name to show for a user: the display name when set, else the
   * username (fallback when unknown). Fetches the profile when it is
   * missing or older than PROFILE_TTL_MS, and re-renders when it arrives.
   */
  name(userID, fallback = '') {
    const p = this.profiles.get(userID);
    if (!p || Date.now() - p.at > PROFILE_TTL_MS) this.#loadProfile(userID);
    if (p?.user.deleted) return 'deleted user';
    return p?.user.display_name || this.usernames.get(userID) || fallback;
  }

  /** The profile of a user as last fetched, or null. */
  profile(userID) {
    return this.profiles.get(userID)?.user ?? null;
  }

  #loadProfile(userID) {
    if (!userID || this.refetching.has('u' + userID)) return;
    this.refetching.add('u' + userID);
    this.api
      .request('GET', '/v1/users/' + userID)
      .then(({ user }) => {
        const old = this.profiles.get(userID)?.user;
        this.profiles.set(userID, { user, at: Date.now() });
        if (user.username) this.usernames.set(userID, user.username);
        if (old?.display_name !== user.display_name || old?.deleted !== user.deleted || old?.avatar !== user.avatar || !old) {
          this.#emit('list');
          if (this.openConv) this.#emit('conv', this.openConv);
        }
      })
      .catch(() => this.profiles.set(userID, { user: this.profiles.get(userID)?.user ?? { id: userID }, at: Date.now() - PROFILE_TTL_MS + 30_000 }))
      .finally(() => this.refetching.delete('u' + userID));
  }

  /** Changes the user's own profile (fields: display_name, status_text). */
  async updateProfile(fields) {
    const { user } = await this.api.request('PATCH', '/v1/users/me/profile', fields);
    return this.#ownProfile(user);
  }

  /**
   * Uploads file as the user's avatar (the server crops and scales it),
   * or with null deletes it. Resolves to the new profile; rejects with
   * ApiError (too_large, unsupported_media_type) or NetworkError.
   */
  async setAvatar(file) {
    let user;
    if (file) user = await (await this.api.raw('POST', '/v1/users/me/avatar', { body: file, timeout: 120_000 })).json().then((r) => r.user);
    else ({ user } = await this.api.request('DELETE', '/v1/users/me/avatar'));
    return this.#ownProfile(user);
  }

  #ownProfile(user) {
    this.profiles.set(user.id, { user, at: Date.now() });
    this.#emit('list');
    if (this.openConv) this.#emit('conv', this.openConv);
    return user;
  }

  /** Learns a profile read elsewhere (search, contacts). */
  #remember(user) {
    if (!user?.id) return;
    if (user.username) this.usernames.set(user.id, user.username);
    this.profiles.set(user.id, { user, at: Date.now() });
  }

  async loadBlocks() {
    const read = ++this.blockReads;
    const { blocks } = await this.api.request('GET', '/v1/blocks');
    if (read !== this.blockReads) return; // a newer read answers for a later change
    this.blocked = new Set(blocks.map((b) => b.user.id));
    if (this.openConv) this.#emit('conv', this.openConv);
  }

  async setBlocked(userID, on) {
    await this.api.request(on ? 'PUT' : 'DELETE', '/v1/blocks/' + userID);
    this.#applyBlock(userID, on);
  }

  #applyBlock(userID, on) {
    if (on) this.blocked.add(userID);
    else this.blocked.delete(userID);
    if (this.openConv) this.#emit('conv', this.openConv);
  }

  async #conversationCall(method, path, body) {
    const res = await this.api.request(method, path, body);
    const c = this.#putConv(res.conversation);
    this.#emit('list');
    this.#emit('conv', c.id);
    return c;
  }

  async createDirect(userID) {
    const c = await this.#conversationCall('POST', '/v1/conversations', { kind: 'direct', members: [userID] });
    this.#refreshPresence([userID]).catch(() => {});
    return c;
  }

  createGroup(title, members) {
    return this.#conversationCall('POST', '/v1/conversations', { kind: 'group', title, members });
  }

  addMembers(convID, members) {
    return this.#conversationCall('POST', `/v1/conversations/${convID}/members`, { members });
  }

  rename(convID, title) {
    return this.#conversationCall('PATCH', `/v1/conversations/${convID}`, { title });
  }

  async removeMember(convID, user) {
    await this.api.request('DELETE', `/v1/conversations/${convID}/members/${user}`);
    this.#removeMembers(convID, [user]);
  }
}

function readJSON(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}
