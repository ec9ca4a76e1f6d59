// Attachments over REST: uploads (whole, or in chunks that report
// progress and resume where the server says the upload stands) and the
// signed download URLs that <img> and links use, so no token ever goes
// into a URL or needs an object URL.

import { ApiError, NetworkError } from './api.js';

const CHUNK = 512 * 1024; // files larger than this go in chunks (the server wants ≥ 64 KiB but the last)
const URL_MARGIN_MS = 60_000; // a signed URL this close to expiring is renewed

/**
 * Uploads file to conversation convID; onProgress(sent, total) is called
 * as bytes are stored. Resolves to the ready Attachment; rejects with
 * ApiError (e.g. too_large, unsupported_media_type) or NetworkError.
 */
export async function upload(api, convID, file, onProgress = () => {}, signal) {
  const { attachment } = await api.request('POST', `/v1/conversations/${convID}/attachments`, {
    name: file.name || 'file',
    size: file.size,
    content_type: file.type || undefined,
  });
  const path = `/v1/attachments/${attachment.id}/content`;
  onProgress(0, file.size);
  if (file.size <= CHUNK) return (await put(api, path, file, {}, signal)).attachment;
  let at = 0;
  let retries = 0;
  for (;;) {
    const end = Math.min(file.size, at + CHUNK);
    let res;
    try {
      res = await put(api, path, file.slice(at, end), { 'Content-Range': `bytes ${at}-${end - 1}/${file.size}` }, signal);
    } catch (e) {
      // A chunk that failed in flight or raced: ask where the upload stands and go on from there.
      if (++retries > 5 || !(e instanceof NetworkError || (e instanceof ApiError && e.code === 'conflict'))) throw e;
      at = (await api.request('GET', `/v1/attachments/${attachment.id}`)).attachment.received;
      continue;
    }
    retries = 0;
    at = res.attachment.received;
    onProgress(at, file.size);
    if (res.attachment.state !== 'uploading') return res.attachment;
  }
}

async function put(api, path, body, headers, signal) {
  const send = async (token) => {
    let res;
    try {
      res = await fetch(path, { method: 'PUT', body, headers: { ...headers, Authorization: 'Bearer ' + token }, cache: 'no-store', signal });
    } catch (e) {
      throw new NetworkError(e.message);
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, data?.error);
    return data;
  };
  try {
    return await send(await api.token());
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 'token_expired')) throw e;
    return send(await api.refresh());
  }
}

/** Signed download URLs per attachment id, renewed before they expire. */
export class SignedURLs {
  constructor(api) {
    this.api = api;
    this.cache = new Map(); // id -> promise of {url, thumbnail_url, expires}
  }

  /** Resolves to {url, thumbnail_url?} for attachment id. */
  get(id) {
    const hit = this.cache.get(id);
    if (hit && (hit.expires === undefined || hit.expires - Date.now() > URL_MARGIN_MS)) return hit.promise;
    const entry = { expires: undefined };
    entry.promise = this.api.request('GET', `/v1/attachments/${id}/url`).then(
      (r) => {
        entry.expires = Date.parse(r.expires_at);
        return r;
      },
      (e) => {
        this.cache.delete(id);
        throw e;
      },
    );
    this.cache.set(id, entry);
    return entry.promise;
  }
}

/** A byte count for people: 930 B, 12.5 KB, 3.1 MB. */
export function byteSize(n) {
  if (n < 1000) return n + ' B';
  const units = ['KB', 'MB', 'GB'];
  let i = -1;
  do {
    n /= 1000;
    i++;
  } while (n >= 1000 && i < units.length - 1);
  return (n >= 100 ? Math.round(n) : n.toFixed(1)) + ' ' + units[i];
}
