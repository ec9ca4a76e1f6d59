// The user's own lists and settings kept on the server: contacts, the
// notification level of each conversation, and push privacy. Each is
// private to the user and changed only over REST; changes made on another
// device are seen after a reload (the server pushes no frame for them).

const LEVELS = new Set(['all', 'mentions', 'none']);
const LEVEL_FETCHES = 3; // level look-ups at once (one request per conversation)

/** My contacts (GET/PUT/DELETE /v1/contacts), oldest first. */
export class Contacts {
  /** emit() tells the store's listeners that the list changed. */
  constructor(api, emit, remember) {
    this.api = api;
    this.emit = emit;
    this.remember = remember; // remember(profile): the store learns names and avatars
    this.users = new Map(); // user id -> profile
    this.loaded = false;
  }

  has(userID) {
    return this.users.has(userID);
  }

  /** The contacts' profiles, oldest contact first. */
  list() {
    return [...this.users.values()];
  }

  async load() {
    const { contacts } = await this.api.request('GET', '/v1/contacts');
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
}

/**
 * Notification levels per conversation ("all", "mentions" or "none").
 * The conversation list does not carry them, so each is read once, when
 * the conversation is first shown, a few at a time.
 */
export class NotifyLevels {
  constructor(api, emit) {
    this.api = api;
    this.emit = emit; // emit(convID)
    this.levels = new Map(); // conv id -> level; absent = not read yet
    this.asked = new Set();
    this.queue = [];
    this.running = 0;
  }

  /** The level of a conversation as last read ("all" until it is), reading it if needed. */
  get(convID) {
    const level = this.levels.get(convID);
    if (level === undefined && !this.asked.has(convID)) {
      this.asked.add(convID);
      this.queue.push(convID);
      this.#pump();
    }
    return level ?? 'all';
  }

  async set(convID, level) {
    if (!LEVELS.has(level)) throw new Error('unknown notification level ' + level);
    const res = await this.api.request('PUT', `/v1/conversations/${convID}/notifications`, { level });
    this.levels.set(convID, res?.level ?? level);
    this.emit(convID);
  }

  #pump() {
    while (this.running < LEVEL_FETCHES && this.queue.length) {
      const convID = this.queue.shift();
      this.running++;
      this.api
        .request('GET', `/v1/conversations/${convID}/notifications`)
        .then(
          ({ level }) => {
            if (!this.levels.has(convID)) this.levels.set(convID, LEVELS.has(level) ? level : 'all');
            this.emit(convID);
          },
          () => this.asked.delete(convID), // not a member any more, or offline: asked again when shown
        )
        .finally(() => {
          this.running--;
          this.#pump();
        });
    }
  }
}

/** GET /v1/me/push-settings: {hide_text}. */
export function pushSettings(api) {
  return api.request('GET', '/v1/me/push-settings');
}

/** PUT /v1/me/push-settings; resolves to the stored settings. */
export function setPushSettings(api, settings) {
  return api.request('PUT', '/v1/me/push-settings', settings);
}
