// The user's own lists and settings kept on the server: contacts, the
// notification level of each conversation, and push privacy. Each is
// private to the user and changed only over REST. Every change, made on
// this device or another, also arrives as a settings frame (see the
// store), which apply() takes; frames sent while the connection was down
// are lost, so the store reads them all again after each reconnect.

const LEVELS = new Set(['all', 'mentions', 'none']);

/** My contacts (GET/PUT/DELETE /v1/contacts), oldest first. */
export class Contacts {
  /** emit() tells the store's listeners that the list changed. */
  constructor(api, emit, remember) {
    this.api = api;
    this.emit = emit;
    this.remember = remember; // remember(profile): the store learns names and avatars
    this.users = new Map(); // user id -> profile
    this.loaded = false;
    this.reads = 0; // load() calls started: only the newest one's answer is kept
  }

  has(userID) {
    return this.users.has(userID);
  }

  /** The contacts' profiles, oldest contact first. */
  list() {
    return [...this.users.values()];
  }

  async load() {
    const read = ++this.reads;
    const { contacts } = await this.api.request('GET', '/v1/contacts');
    if (read !== this.reads) return; // a newer read, begun after a change, answers for it
    this.users = new Map(contacts.map((c) => [c.user.id, c.user]));
    for (const c of contacts) this.remember(c.user);
    this.loaded = true;
    this.emit();
  }

  /** Adds (on) or removes a contact; profile is shown until the list is read again. */
  async set(userID, on, profile) {
    await this.api.request(on ? 'PUT' : 'DELETE', '/v1/contacts/' + userID);
    if (on) this.users.set(userID, profile ?? this.users.get(userID) ?? { id: userID });
    else this.users.delete(userID);
    this.emit();
    this.load().catch(() => {}); // the server's order and fresh profiles
  }

  /** A change from a settings frame: shown at once (profile while known), then read again in the server's order. */
  apply(userID, on, profile) {
    if (on) this.users.set(userID, this.users.get(userID) ?? profile ?? { id: userID });
    else this.users.delete(userID);
    this.emit();
    this.load().catch(() => {});
  }
}

/**
 * Notification levels per conversation ("all", "mentions" or "none").
 * The conversation list does not carry them: load() reads all of them in
 * one request (GET /v1/me/notification-levels, which lists only levels
 * other than "all"), whenever the list is loaded. refresh() re-reads one
 * conversation's, where a stale level matters (its menu).
 */
export class NotifyLevels {
  constructor(api, emit) {
    this.api = api;
    this.emit = emit; // emit(convID); '' for every conversation
    this.levels = new Map(); // conv id -> "mentions" or "none"; absent = "all"
    this.loaded = false; // a load() has succeeded
    this.loading = null; // the load() in flight
    this.touched = new Set(); // set or re-read while a load was in flight: newer than its answer
    this.sets = 0; // set() calls started: a re-read begun before one may answer the old level
  }

  /** The level of a conversation as last read ("all" until it is). */
  get(convID) {
    return this.levels.get(convID) ?? 'all';
  }

  /** Reads every level in one request; concurrent calls share it. */
  load() {
    this.loading ??= (async () => {
      this.touched.clear();
      try {
        const { levels } = await this.api.request('GET', '/v1/me/notification-levels');
        const next = new Map();
        for (const { conv, level } of levels ?? []) if (LEVELS.has(level) && level !== 'all') next.set(conv, level);
        for (const convID of this.touched) {
          const mine = this.levels.get(convID);
          if (mine) next.set(convID, mine);
          else next.delete(convID);
        }
        this.levels = next;
        this.loaded = true;
        this.emit('');
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  /** Re-reads one conversation's level (GET …/notifications); resolves to it. */
  async refresh(convID) {
    const sets = this.sets;
    const { level } = await this.api.request('GET', `/v1/conversations/${convID}/notifications`);
    if (LEVELS.has(level) && sets === this.sets) this.#put(convID, level);
    return this.get(convID);
  }

  /** A level from a settings frame: newer than what a read still on its way may answer. */
  apply(convID, level) {
    if (!LEVELS.has(level)) return;
    this.sets++;
    this.#put(convID, level);
  }

  async set(convID, level) {
    if (!LEVELS.has(level)) throw new Error('unknown notification level ' + level);
    this.sets++;
    const res = await this.api.request('PUT', `/v1/conversations/${convID}/notifications`, { level });
    this.#put(convID, LEVELS.has(res?.level) ? res.level : level);
  }

  #put(convID, level) {
    const before = this.get(convID);
    if (level === 'all') this.levels.delete(convID);
    else this.levels.set(convID, level);
    if (this.loading) this.touched.add(convID);
    if (level !== before) this.emit(convID);
  }
}

/**
 * Push privacy: whether notifications may show message text (GET/PUT
 * /v1/me/push-settings). Read when the settings dialog asks (load()), and
 * by the store again after each reconnect once it has been asked for. A
 * settings frame and a change made here are newer than what a read still
 * on its way may answer, so such an answer is dropped.
 */
export class PushPrivacy {
  constructor(api, emit) {
    this.api = api;
    this.emit = emit; // emit(): the settings were read, set or told
    this.settings = null; // {hide_text} as last read, set or told; null until then
    this.reads = 0; // load() calls started: only the newest one's answer is kept
    this.told = 0; // frames and set() calls seen
  }

  /** Reads the settings; resolves to them, or to null when a newer read is on its way (its answer is emitted instead). */
  async load() {
    const read = ++this.reads;
    const told = this.told;
    const s = await this.api.request('GET', '/v1/me/push-settings');
    if (read !== this.reads) return null;
    if (told === this.told) this.#put(s);
    return this.settings;
  }

  /** The settings from a settings frame. */
  apply(s) {
    this.told++;
    this.#put(s);
  }

  /** Stores the settings; resolves to what the server stored. */
  async set(s) {
    this.told++;
    const res = await this.api.request('PUT', '/v1/me/push-settings', s);
    this.told++;
    this.#put(res ?? s);
    return this.settings;
  }

  #put(s) {
    this.settings = { hide_text: !!s?.hide_text };
    this.emit();
  }
}
