// Modal dialogs (native <dialog>: focus stays inside, Escape closes) for
// starting a chat, creating a group and managing a group; plus toasts.

import { h, debounce } from '../dom.js';
import { presenceText } from '../format.js';
import { icon } from './icons.js';
import { userAvatar } from './avatar.js';

/** Shows a short notice at the bottom of the screen. */
export function toast(text) {
  let box = document.getElementById('toasts');
  if (!box) document.body.append((box = h('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' })));
  const t = h('div', { class: 'toast' }, text);
  box.append(t);
  setTimeout(() => t.remove(), 5000);
}

export function modal(id, title, ...body) {
  document.getElementById(id)?.remove();
  const close = h('button', { type: 'button', class: 'ghost icon-button', 'aria-label': 'Close', onclick: () => dlg.close() }, icon('close'));
  const dlg = h('dialog', { id, class: 'dialog', 'aria-labelledby': id + '-title' }, h('header', { class: 'dialog-head' }, h('h2', { id: id + '-title' }, title), close), ...body);
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

/** Asks a yes/no question; resolves to true for ok. */
export function confirmDialog(question, ok) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h('button', { type: 'button', class: 'danger-button', id: 'confirm-ok', onclick: () => ((answer = true), dlg.close()) }, ok);
    const dlg = modal(
      'dlg-confirm',
      question,
      h('div', { class: 'dialog-actions' }, h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), yes),
    );
    dlg.addEventListener('close', () => resolve(answer));
    yes.focus();
  });
}

/** A person as a row's content: avatar, name (label), then extra nodes. */
export function person(store, user, extra = [], label = user.username) {
  return [userAvatar(store, user.id, user.display_name || user.username, 'small'), h('span', { class: 'person-name' }, label), ...extra];
}

/**
 * A username search with paging. pick(user) is called for a chosen
 * result; exclude(id) hides users (the caller, existing members).
 */
export function userSearch(store, { pick, exclude, label, selected = () => false }) {
  const input = h('input', { type: 'search', class: 'user-search', placeholder: 'Search by name or username', 'aria-label': label, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
  const list = h('ul', { class: 'results', 'aria-label': 'Search results' });
  const more = h('button', { type: 'button', class: 'link more', hidden: true }, 'More results');
  const note = h('p', { class: 'hint', role: 'status' }, 'Type the beginning of a username.');
  let state = { q: '', next: '', users: [] };

  const render = () => {
    list.replaceChildren(
      ...state.users
        .filter((u) => !exclude(u.id))
        .map((u) => {
          const on = selected(u.id);
          return h(
            'li',
            {},
            h('button', { type: 'button', class: on ? 'user-result on' : 'user-result', dataset: { username: u.username, user: u.id }, 'aria-pressed': on ? 'true' : null, onclick: () => (pick(u), render()) }, person(store, u, on ? [icon('check', 'picked')] : [], u.display_name ? `${u.display_name} (@${u.username})` : u.username)),
          );
        }),
    );
    more.hidden = !state.next;
  };
  const load = async (q, after) => {
    try {
      const res = await store.searchUsers(q, after);
      if (input.value.trim().replace(/^@/, '').toLowerCase() !== q) return; // a newer query is on its way
      state = { q, next: res.next || '', users: after ? [...state.users, ...res.users] : res.users };
      const shown = state.users.filter((u) => !exclude(u.id)).length;
      note.textContent = shown ? '' : state.next ? '' : `No one found starting with “${q}”.`;
      render();
    } catch (e) {
      note.textContent = 'Search failed: ' + e.message;
    }
  };
  const search = debounce(() => {
    const q = input.value.trim().replace(/^@/, '').toLowerCase();
    if (!q) {
      state = { q: '', next: '', users: [] };
      note.textContent = 'Type the beginning of a username.';
      render();
      return;
    }
    load(q, '');
  }, 200);
  input.addEventListener('input', search);
  more.addEventListener('click', () => load(state.q, state.next));
  return { el: h('div', { class: 'search' }, input, note, list, more), input, render };
}

/** Find someone and open the direct conversation with them. */
export function newChatDialog(store, navigate) {
  const start = async (u) => {
    try {
      const c = await store.createDirect(u.id);
      dlg.close();
      navigate('/c/' + c.id);
    } catch (e) {
      toast('Could not start the chat: ' + e.message);
    }
  };
  const search = userSearch(store, { label: 'Find people', exclude: (id) => id === store.me.id, pick: start });
  // Contacts first: one click opens the chat with any of them.
  const contacts = store.contacts.list().filter((u) => !u.deleted);
  const list =
    contacts.length > 0 &&
    h(
      'div',
      { class: 'dialog-body new-chat-contacts' },
      h('h3', { id: 'new-chat-contacts-title' }, 'Contacts'),
      h(
        'ul',
        { class: 'results', 'aria-labelledby': 'new-chat-contacts-title' },
        contacts.map((u) =>
          h('li', {}, h('button', { type: 'button', class: 'user-result contact-result', dataset: { user: u.id, username: u.username }, onclick: () => start(u) }, person(store, u, [], u.display_name ? `${u.display_name} (@${u.username})` : u.username))),
        ),
      ),
    );
  const dlg = modal('dlg-new-chat', 'New chat', search.el, list);
  search.input.focus();
}

/** Create a group with a title and members. */
export function newGroupDialog(store, navigate) {
  const picked = new Map();
  const title = h('input', { id: 'group-title', maxlength: '200', placeholder: 'e.g. Weekend trip', autocomplete: 'off' });
  const chips = h('ul', { class: 'chips', 'aria-label': 'Members to add' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const renderChips = () =>
    chips.replaceChildren(
      ...[...picked.values()].map((u) =>
        h('li', { class: 'chip' }, u.username, h('button', { type: 'button', class: 'ghost', 'aria-label': 'Remove ' + u.username, onclick: () => (picked.delete(u.id), renderChips(), search.render()) }, icon('close'))),
      ),
    );
  const search = userSearch(store, {
    label: 'Add members',
    exclude: (id) => id === store.me.id,
    selected: (id) => picked.has(id),
    pick: (u) => {
      if (picked.has(u.id)) picked.delete(u.id);
      else picked.set(u.id, u);
      renderChips();
    },
  });
  const create = h('button', { type: 'submit', id: 'group-create', class: 'primary' }, 'Create group');
  const form = h(
    'form',
    { class: 'dialog-body' },
    h('label', { for: 'group-title' }, 'Group name'),
    title,
    h('label', {}, 'Members'),
    chips,
    search.el,
    error,
    h('div', { class: 'dialog-actions' }, create),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    create.disabled = true;
    try {
      const c = await store.createGroup(title.value.trim(), [...picked.keys()]);
      dlg.close();
      navigate('/c/' + c.id);
    } catch (err) {
      error.textContent = err.message;
      create.disabled = false;
    }
  });
  const dlg = modal('dlg-new-group', 'New group', form);
  title.focus();
}

/** Members, roles, renaming, adding, removing and leaving, as the caller's role allows. */
export function groupDialog(store, convID, navigate) {
  const body = h('div', { class: 'dialog-body' });
  const dlg = modal('dlg-group', 'Group', body);
  const render = () => {
    const c = store.convs.get(convID);
    if (!c) {
      dlg.close();
      return;
    }
    const myRole = store.mine(c)?.role;
    const manager = myRole === 'owner' || myRole === 'admin';
    const canRemove = (m) => m.user !== store.me.id && (myRole === 'owner' || (myRole === 'admin' && m.role === 'member'));
    const parts = [];
    if (manager) {
      const title = h('input', { id: 'group-rename', value: c.title || '', maxlength: '200', 'aria-label': 'Group name' });
      const rename = h('form', { class: 'inline-form' }, title, h('button', { type: 'submit' }, 'Rename'));
      rename.addEventListener('submit', (e) => {
        e.preventDefault();
        store.rename(convID, title.value.trim()).then(() => toast('Group renamed.'), (err) => toast('Could not rename: ' + err.message));
      });
      parts.push(h('label', { for: 'group-rename' }, 'Group name'), rename);
    } else {
      parts.push(h('p', { class: 'group-name' }, c.title || 'Untitled group'));
    }
    parts.push(h('h3', {}, `${c.members.length} member${c.members.length === 1 ? '' : 's'}`));
    parts.push(
      h(
        'ul',
        { class: 'members', id: 'group-members' },
        c.members.map((m) => {
          const name = m.username || store.usernames.get(m.user) || '…';
          const p = store.presence.get(m.user);
          return h(
            'li',
            { dataset: { user: m.user, username: name } },
            person(store, { id: m.user, username: name, display_name: store.name(m.user, name) }, [], store.name(m.user, name) + (m.user === store.me.id ? ' (you)' : '')),
            h('span', { class: 'sub' }, p ? presenceText(p) : ''),
            m.role !== 'member' && h('span', { class: 'role' }, m.role),
            canRemove(m) &&
              h('button', {
                type: 'button', class: 'link danger remove', 'aria-label': 'Remove ' + name,
                onclick: () => store.removeMember(convID, m.user).then(render, (err) => toast('Could not remove: ' + err.message)),
              }, 'Remove'),
          );
        }),
      ),
    );
    if (manager) {
      const members = new Set(c.members.map((m) => m.user));
      const search = userSearch(store, {
        label: 'Add people',
        exclude: (id) => members.has(id),
        pick: (u) => store.addMembers(convID, [u.id]).then(render, (err) => toast('Could not add: ' + err.message)),
      });
      parts.push(h('h3', {}, 'Add people'), search.el);
    }
    parts.push(
      h('div', { class: 'dialog-actions' },
        h('button', {
          type: 'button', id: 'group-leave', class: 'danger-button',
          onclick: async () => {
            if (!(await confirmDialog('Leave this group?', 'Leave'))) return;
            try {
              await store.removeMember(convID, store.me.id);
              dlg.close();
              navigate('/');
            } catch (err) {
              toast('Could not leave: ' + err.message);
            }
          },
        }, 'Leave group'),
      ),
    );
    const focused = document.activeElement?.id;
    body.replaceChildren(...parts);
    if (focused) document.getElementById(focused)?.focus();
  };
  const onChange = (e) => {
    if (e.detail.conv === convID && !body.contains(document.activeElement)) render();
  };
  store.addEventListener('change', onChange);
  dlg.addEventListener('close', () => store.removeEventListener('change', onChange));
  render();
  const members = store.convs.get(convID)?.members.map((m) => m.user) ?? [];
  store.loadPresence(members).then(render, () => {});
}
