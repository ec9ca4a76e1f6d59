// Package web is Natter's browser client: plain HTML, CSS and JavaScript
// modules in static/, embedded into the binary and served by Handler.
//
// Invariants: there is no build step, so what is in static/ is exactly
// what browsers get (a test compares them). Every response carries a
// strict Content-Security-Policy (scripts, styles and connections from
// the page's own origin only; no inline code) and nosniff. The client
// speaks only the public protocol of docs/protocol.md, from the same
// origin as the API; it never puts a token in a URL and renders all user
// text as text, never as HTML. The package imports only the standard
// library.
//
// The client, from the bottom up: js/api.js (REST and the login session),
// js/transport.js (the WebSocket, or Server-Sent Events plus posted
// frames, with reconnection), js/store.js (the state and the protocol's
// rules: sync cursor, receipts, the outbox of unsent messages), js/ui/
// (the screens) and js/main.js (start-up and routing); js/files.js
// uploads attachments and fetches their signed download URLs;
// js/avatars.js fetches avatars (with the token) into a bounded cache of
// data: URLs, js/prefs.js keeps contacts, notification levels and push
// privacy, and js/account.js downloads the data export and deletes the
// account; sw.js,
// the service worker served from the root, shows push notifications.
// The browser tests (*_test.go) drive it in headless Chromium against a
// real node.
package web
