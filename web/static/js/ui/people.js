// Other people: a person's profile card (picture, names, status, and the
// actions on them: message, contact) and the contacts dialog (the list,
// each a way into a direct chat, and a people search to add to it).

import { h } from '../dom.js';
import { presenceText } from '../format.js';
import { icon } from './icons.js';
import { userAvatar } from './avatar.js';
import { modal, person, toast, userSearch } from './dialogs.js';

/** Opens (or finds) the direct chat with userID and shows it; false if it failed. */
async function openDirect(store, userID, navigate) {
  try {
    const c = await store.createDirect(userID);
    navigate('/c/' + c.id);
    return true;
  } catch (e) {
    toast(e.code === 'blocked' ? 'You cannot message this person.' : 'Could not start the chat: ' + e.message);
    return false;
  }
}

/** The profile card of userID: read fresh, then kept current while open. */
export function profileCard(store, userID, navigate) {
  const body = h('div', { class: 'dialog-body card' });
  const dlg = modal('dlg-card', 'Profile', body);
  let user = store.profile(userID) ?? { id: userID, username: store.usernames.get(userID) ?? '' };
  const render = () => {
    const name = user.deleted ? 'deleted user' : user.display_name || user.username || '…';
    const self = userID === store.me.id;
    const contact = store.contacts.has(userID);
    const p = store.presence.get(userID);
    const actions = [];
    if (!self && !user.deleted) {
      actions.push(
        h('button', {
          id: 'card-message', type: 'button', class: 'primary',
          onclick: async () => (await openDirect(store, userID, navigate)) && dlg.close(),
        }, icon('chat'), 'Message'),
        h('button', {
          id: 'card-contact', type: 'button', dataset: { contact: String(contact) },
          onclick: async (e) => {
            e.currentTarget.disabled = true;
            try {
              await store.contacts.set(userID, !contact, user);
              toast(contact ? `${name} is no longer a contact.` : `${name} is now a contact.`);
            } catch (err) {
              toast('Could not change your contacts: ' + err.message);
            }
            render();
          },
        }, icon('contacts'), contact ? 'Remove from contacts' : 'Add to contacts'),
      );
    }
    const focused = document.activeElement?.id;
    body.replaceChildren(
      userAvatar(store, userID, name, 'large'),
      h('p', { id: 'card-name', class: 'card-name' }, name),
      user.username && h('p', { id: 'card-username', class: 'sub' }, '@' + user.username + (self ? ' (you)' : '')),
      user.status_text && h('p', { id: 'card-status', class: 'card-status' }, user.status_text),
      p && !self && h('p', { class: 'sub' }, presenceText(p)),
      actions.length > 0 && h('div', { class: 'dialog-actions card-actions' }, actions),
    );
    if (focused) document.getElementById(focused)?.focus();
  };
  const onChange = (e) => ['list', 'contacts', 'presence'].includes(e.detail.what) && ((user = store.profile(userID) ?? user), render());
  store.addEventListener('change', onChange);
  dlg.addEventListener('close', () => store.removeEventListener('change', onChange));
  render();
  store.api.request('GET', '/v1/users/' + userID).then(
    (r) => {
      user = r.user;
      render();
    },
    (e) => toast('Could not load the profile: ' + e.message),
  );
  store.loadPresence([userID]).catch(() => {});
}

/** My contacts: open a chat with one, remove one, find people to add. */
export function contactsDialog(store, navigate) {
  const list = h('ul', { id: 'contact-list', class: 'members contacts', 'aria-label': 'Your contacts' });
  const empty = h('p', { id: 'contacts-empty', class: 'hint' }, 'No contacts yet. Find people below to add them.');
  const search = userSearch(store, {
    label: 'Find people to add',
    exclude: (id) => id === store.me.id,
    selected: (id) => store.contacts.has(id),
    pick: async (u) => {
      const on = !store.contacts.has(u.id);
      try {
        await store.contacts.set(u.id, on, u);
        toast(on ? `${u.display_name || u.username} is now a contact.` : `${u.display_name || u.username} is no longer a contact.`);
      } catch (e) {
        toast('Could not change your contacts: ' + e.message);
      }
      search.render();
    },
  });
  const render = () => {
    const users = store.contacts.list();
    empty.hidden = users.length > 0 || !store.contacts.loaded;
    const focused = document.activeElement?.closest?.('#contact-list li')?.dataset.user;
    list.replaceChildren(
      ...users.map((u) => {
        const name = u.deleted ? 'deleted user' : u.display_name || u.username || store.usernames.get(u.id) || '…';
        return h(
          'li',
          { dataset: { user: u.id, username: u.username ?? '' } },
          h('button', {
            type: 'button', class: 'user-result contact-open', 'aria-label': 'Message ' + name, disabled: !!u.deleted,
            onclick: async () => (await openDirect(store, u.id, navigate)) && dlg.close(),
          }, person(store, u, [], u.display_name && u.username ? `${u.display_name} (@${u.username})` : name)),
          h('button', {
            type: 'button', class: 'link danger contact-remove', 'aria-label': `Remove ${name} from contacts`,
            onclick: () => store.contacts.set(u.id, false).then(() => toast(`${name} is no longer a contact.`), (e) => toast('Could not remove: ' + e.message)),
          }, 'Remove'),
        );
      }),
    );
    if (focused) list.querySelector(`li[data-user="${CSS.escape(focused)}"] .contact-open`)?.focus();
    search.render();
  };
  const dlg = modal('dlg-contacts', 'Contacts', h('div', { class: 'dialog-body' }, list, empty, h('h3', {}, 'Add people'), search.el));
  const onChange = (e) => ['contacts', 'list'].includes(e.detail.what) && render();
  store.addEventListener('change', onChange);
  dlg.addEventListener('close', () => store.removeEventListener('change', onChange));
  render();
  store.contacts.load().catch((e) => toast('Could not load your contacts: ' + e.message));
  (list.querySelector('.contact-open') ?? search.input).focus();
}
