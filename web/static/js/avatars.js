// Avatar images. GET /v1/users/{id}/avatar wants the bearer token, which
// never goes into a URL, so an <img> cannot load it by itself: the bytes
// are fetched here and handed to <img> as a data: URL (the page's CSP
// allows data: images, not blob: ones). One image is kept per user, keyed
// by the avatar id of the profile: a new id (a profile frame, a fetched
// profile) replaces it, and the URL carries the id, so no stale copy is
// served from an HTTP cache either.

import { ApiError } from './api.js';

const MAX_USERS = 500; // images kept; the least recently added go first
const PARALLEL = 4; // fetches at once, so a long list does not burst
const TYPES = /^image\/(png|jpeg|gif|webp)$/;

export class AvatarImages {
  constructor(api) {
    this.api = api;
    this.cache = new Map(); // user id -> {avatar, url, promise}; url '' = none, undefined = loading
    this.running = 0;
    this.waiting = [];
  }

  /**
   * The data: URL of the user's avatar avatarID when it is loaded, ''
   * when it cannot be shown (gone, not an image), or undefined while it
   * loads (call load to wait for it).
   */
  peek(userID, avatarID) {
    const e = this.cache.get(userID);
    return e?.avatar === avatarID ? e.url : undefined;
  }

  /** Resolves to the data: URL of the thumbnail of avatarID ('' when it cannot be shown). */
  load(userID, avatarID) {
    const e = this.cache.get(userID);
    if (e?.avatar === avatarID) return e.promise;
    this.cache.delete(userID); // re-added last: the map stays in insertion order
    const entry = { avatar: avatarID, url: undefined };
    entry.promise = this.#queue(() => this.#fetch(userID, avatarID)).then(
      (url) => (entry.url = url),
      () => {
        // Offline or a server error: forget it, so the next render tries again.
        if (this.cache.get(userID) === entry) this.cache.delete(userID);
        return '';
      },
    );
    this.cache.set(userID, entry);
    while (this.cache.size > MAX_USERS) this.cache.delete(this.cache.keys().next().value);
    return entry.promise;
  }

  /** Forgets the image of a user (their avatar was removed). */
  drop(userID) {
    this.cache.delete(userID);
  }

  async #fetch(userID, avatarID) {
    let res;
    try {
      res = await this.api.raw('GET', `/v1/users/${userID}/avatar?size=thumb&v=${encodeURIComponent(avatarID)}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return ''; // taken off meanwhile: the profile frame follows
      throw e;
    }
    const blob = await res.blob();
    if (!TYPES.test(blob.type)) return '';
    return new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(String(r.result));
      r.onerror = () => reject(r.error);
      r.readAsDataURL(blob);
    });
  }

  async #queue(fn) {
    // A finished fetch hands its slot straight to the next waiting one.
    if (this.running >= PARALLEL) await new Promise((go) => this.waiting.push(go));
    else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
