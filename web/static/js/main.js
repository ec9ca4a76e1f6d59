// Natter's web client: boots the session, then shows either the sign-in
// screen or the chat, and routes between the list (/) and a conversation
// (/c/<id>) with the History API.

import { Api } from './api.js';
import { Store } from './store.js';
import { authView } from './ui/auth.js';
import { Shell } from './ui/shell.js';

const root = document.getElementById('app');
const api = new Api();
let store = null;
let shell = null;
let mode = ''; // "in" or "out"


function navigate(path, replace = false) {
  if (location.pathname !== path) history[replace ? 'replaceState' : 'pushState'](null, '', path);
  route();
}

function route() {
  if (!shell) return;
  const m = location.pathname.match(/^\/c\/(\d+)$/);
  shell.show(m ? m[1] : '');
}

function signedIn() {
  mode = 'in';
  store = new Store(api);
  shell = new Shell(root, store, { navigate, logout: () => api.logout() });
  store.addEventListener('ended', () => api.logout());
  store.start();
  route();
}

function signedOut() {
  if (mode === 'out') return;
  mode = 'out';
  store?.stop();
  shell?.destroy();
  for (const d of document.querySelectorAll('dialog[open]')) d.close(); // nothing of the account stays on screen
  store = shell = null;
  document.title = 'Natter';
  delete document.body.dataset.conn;
  authView(root, api, () => signedIn());
}

api.addEventListener('ended', signedOut);
addEventListener('popstate', route);
// A click on a notification (sw.js) opens its conversation in this page.
navigator.serviceWorker?.addEventListener('message', (e) => {
  if (e.data?.type === 'natter.open' && typeof e.data.path === 'string' && /^\/(c\/\d+)?$/.test(e.data.path)) navigate(e.data.path);
});
// A page kept in the back/forward cache would keep its socket open and its
// user online; close it, and reconnect (and catch up) if the page returns.
addEventListener('pagehide', () => store?.conn.stop());
addEventListener('pageshow', (e) => e.persisted && store?.conn.start());

if (api.hasSession) {
  // The access token is only in memory: get one with the stored refresh
  // token before showing anything that needs it.
  // If the server is unreachable the session may still be fine: show the
  // chat, which waits for the connection and refreshes the token itself.
  api.refresh().then(signedIn, () => (api.hasSession ? signedIn() : signedOut()));
} else {
  signedOut();
}
