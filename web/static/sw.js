// Natter's service worker: shows push notifications and opens their
// conversation on a click. It handles no fetches (the app is always
// loaded from the network). The payload is the server's JSON
// {conv, title, body?, count, message_id}; see docs/protocol.md.

self.addEventListener('push', (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    // not JSON: show a generic notification
  }
  const conv = typeof data.conv === 'string' ? data.conv : '';
  const count = Number(data.count) > 1 ? ` (${Number(data.count)} new messages)` : '';
  const title = (typeof data.title === 'string' && data.title) || 'Natter';
  const body = (typeof data.body === 'string' ? data.body : 'New message') + count;
  event.waitUntil(
    self.registration.showNotification(title, { body, tag: conv ? 'c' + conv : 'natter', renotify: true, icon: '/favicon.svg', data: { conv } }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const conv = event.notification.data?.conv;
  const path = /^\d+$/.test(conv || '') ? '/c/' + conv : '/';
  event.waitUntil(
    (async () => {
      const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const win = wins.find((w) => new URL(w.url).origin === self.location.origin);
      if (win) {
        // The page routes itself (no reload): see main.js.
        win.postMessage({ type: 'natter.open', path });
        return win.focus();
      }
      return self.clients.openWindow(path);
    })(),
  );
});
