// A person's avatar: their picture when they wear one, else their
// initials on a colour of their own. The picture arrives after the
// element is shown (it is fetched with the token, see avatars.js); a
// cached one is there at once, so re-rendering does not flicker.

import { h } from '../dom.js';
import { initials, tint } from '../format.js';

/**
 * The avatar of userID (name gives the initials); cls adds classes such
 * as "small" or "large". Decorative (aria-hidden): the name is always
 * shown beside it. data-avatar names the picture while one is shown.
 */
export function userAvatar(store, userID, name, cls = '') {
  const el = h('span', { class: `avatar ${tint(userID)} ${cls}`.trim(), 'aria-hidden': 'true', dataset: { user: userID } }, h('span', { class: 'initials' }, initials(name || '?')));
  const avatarID = store.profile(userID)?.avatar;
  if (!avatarID) return el;
  const url = store.avatars.peek(userID, avatarID);
  if (url) picture(el, avatarID, url);
  else if (url === undefined) store.avatars.load(userID, avatarID).then((u) => u && picture(el, avatarID, u));
  return el;
}

function picture(el, avatarID, url) {
  el.querySelector('.avatar-img')?.remove();
  el.prepend(h('img', { class: 'avatar-img', src: url, alt: '', draggable: 'false' }));
  el.dataset.avatar = avatarID;
}
