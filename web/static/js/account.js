// The account as a whole: the data export (a ZIP the server writes while
// it sends it) and deleting the account for good.

const EXPORT_NAME = 'natter-export.zip';

/**
 * Downloads the user's data export into memory and resolves to {blob,
 * name}. onProgress(received, total) follows the bytes (total is 0 when
 * the server does not know it in advance: the archive is generated while
 * it is sent). Rejects with ApiError (too_large, rate_limited),
 * NetworkError (also when the connection broke mid-way: a cut archive is
 * never handed out) or, on signal, an AbortError.
 */
export async function downloadExport(api, onProgress, signal) {
  const res = await api.raw('POST', '/v1/users/me/export', { timeout: 0, signal });
  const total = Number(res.headers.get('Content-Length')) || 0;
  const reader = res.body.getReader();
  const parts = [];
  let received = 0;
  onProgress(0, total);
  for (;;) {
    let step;
    try {
      step = await reader.read();
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw Object.assign(new Error('the download broke off before the end: ' + e.message), { name: 'NetworkError', cut: true });
    }
    if (step.done) break;
    parts.push(step.value);
    received += step.value.byteLength;
    onProgress(received, total);
  }
  return { blob: new Blob(parts, { type: 'application/zip' }), name: fileName(res.headers.get('Content-Disposition')) };
}

/** The file name of a Content-Disposition header, made safe; a default when there is none. */
export function fileName(disposition) {
  const m = /filename\*?\s*=\s*(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition || '');
  let name = '';
  try {
    name = m ? decodeURIComponent(m[1]) : '';
  } catch {
    name = m[1];
  }
  name = name.replace(/[\\/:*?"<>|\u0000-\u001f]/g, '_').replace(/^\.+/, '').trim();
  return name || EXPORT_NAME;
}

/** Saves blob as a download named name (a link to an object URL, clicked). */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has started from the URL by now; give slow disks a margin.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * Deletes the account (DELETE /v1/users/me, password checked again), then
 * forgets everything this browser kept for the user and ends the session
 * here. Rejects with ApiError: invalid_credentials, rate_limited.
 */
export async function deleteAccount(api, userID, password) {
  await api.request('DELETE', '/v1/users/me', { password });
  for (const key of ['natter.outbox.' + userID, 'natter.push.' + userID]) localStorage.removeItem(key);
  try {
    const reg = await navigator.serviceWorker?.getRegistration('/');
    await (await reg?.pushManager.getSubscription())?.unsubscribe();
  } catch {
    // The server dropped the subscription with the account; this is tidying.
  }
  api.forget();
}
