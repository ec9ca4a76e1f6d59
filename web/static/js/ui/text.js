// Message text as DOM: plain text nodes, with http(s) links and @mentions
// of members marked up. Nothing is ever parsed as HTML; a link is made
// only from a URL whose scheme is http or https.

import { h } from '../dom.js';

const TOKEN = /(https?:\/\/[^\s<>"']+)|(@[A-Za-z0-9][A-Za-z0-9_.-]{0,40})/g;

/**
 * Renders text; mentioned is the set of lower-case usernames the server
 * resolved as mentions, me the user's own username (highlighted more).
 */
export function richText(text, mentioned, me) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(TOKEN)) {
    let [token] = match;
    const at = match.index;
    if (match[1]) {
      token = token.replace(/[.,;:!?)\]}]+$/, '');
      const href = safeURL(token);
      if (!href) continue;
      out.push(text.slice(last, at), h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow' }, token));
      last = at + token.length;
      continue;
    }
    const before = at > 0 ? text[at - 1] : '';
    if (/[A-Za-z0-9_@]/.test(before)) continue;
    const name = token.slice(1).replace(/[._-]+$/, '');
    if (!mentioned.has(name.toLowerCase())) continue;
    const cls = name.toLowerCase() === me ? 'mention me' : 'mention';
    out.push(text.slice(last, at), h('span', { class: cls }, '@' + name));
    last = at + 1 + name.length;
  }
  out.push(text.slice(last));
  return out.filter((s) => s !== '');
}

function safeURL(s) {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : '';
  } catch {
    return '';
  }
}
