// The signed-in screen: connection banner, conversation list and the open
// conversation. On a narrow screen only one of list and conversation is
// shown at a time (data-view on the shell).

import { h, replaceKids } from '../dom.js';
import { listTime, typingText } from '../format.js';
import { icon } from './icons.js';
import { ThreadView, avatar, convName } from './thread.js';
import { groupDialog, newChatDialog, newGroupDialog } from './dialogs.js';
import { SearchView } from './search.js';
import { profileDialog } from './profile.js';
import { PushToggle } from './push.js';
import { userAvatar } from './avatar.js';
import { contactsDialog, profileCard } from './people.js';
import { settingsDialog } from './settings.js';

const BANNER_GRACE_MS = 1500; // a reconnect quicker than this shows no banner

export class Shell {
  constructor(root, store, { navigate, logout }) {
    this.store = store;
    this.navigate = navigate;
    this.items = new Map(); // conv id -> list link
    this.dirty = new Set();
    this.thread = new ThreadView(store, {
      navigate,
      openGroup: (id) => groupDialog(store, id, navigate),
      openProfile: (id) => profileCard(store, id, navigate),
    });
    this.search = new SearchView(store, {
      open: (conv, seq, id) => this.#openResult(conv, seq, id),
      shown: (on) => (this.nav.hidden = on),
    });
    this.push = new PushToggle(store);
    this.#build(root, logout);
    store.addEventListener('change', (e) => this.#changed(e.detail));
    this.bannerTimer = 0;
    this.tick = setInterval(() => this.#renderBanner(), 1000);
  }

  #build(root, logout) {
    const me = this.store.me;
    this.list = h('ul', { id: 'conv-list', class: 'conv-list' });
    this.empty = h('p', { class: 'list-empty', hidden: true }, 'No conversations yet. Start one with “New chat”.');
    this.banner = h('div', { id: 'banner', class: 'banner', role: 'status', hidden: true });
    this.placeholder = h(
      'div',
      { class: 'placeholder' },
      h('span', { class: 'logo big', 'aria-hidden': 'true' }, 'N'),
      h('h2', {}, 'Welcome, ' + me.username),
      h('p', {}, 'Pick a conversation, or start a new one.'),
    );
    this.main = h('main', { class: 'main', id: 'main' }, this.placeholder);
    this.el = h(
      'div',
      { class: 'shell', dataset: { view: 'list' } },
      this.banner,
      h(
        'aside',
        { class: 'sidebar', 'aria-label': 'Conversations' },
        h(
          'header',
          { class: 'side-head' },
          (this.meAvatar = h('span', { id: 'me-avatar', class: 'avatar-slot' })),
          h('span', { class: 'me-names' }, (this.meName = h('span', { id: 'me-display', class: 'me-display' })), h('span', { id: 'me', class: 'me' }, me.username)),
          h('button', { id: 'edit-profile', type: 'button', class: 'ghost icon-button', 'aria-label': 'Edit your profile', title: 'Edit your profile', onclick: () => profileDialog(this.store) }, icon('person')),
          this.push.button,
          h('button', { id: 'settings', type: 'button', class: 'ghost icon-button', 'aria-label': 'Settings', title: 'Settings', onclick: () => settingsDialog(this.store, this.push) }, icon('settings')),
          h('button', { id: 'logout', type: 'button', class: 'ghost icon-button', 'aria-label': 'Log out', title: 'Log out', onclick: logout }, icon('logout')),
        ),
        h(
          'div',
          { class: 'side-actions' },
          h('button', { id: 'new-chat', type: 'button', class: 'primary', onclick: () => newChatDialog(this.store, this.navigate) }, icon('chat'), 'New chat'),
          h('button', { id: 'new-group', type: 'button', onclick: () => newGroupDialog(this.store, this.navigate) }, icon('group'), 'New group'),
          h('button', { id: 'contacts', type: 'button', class: 'icon-button', 'aria-label': 'Contacts', title: 'Contacts', onclick: () => contactsDialog(this.store, this.navigate) }, icon('contacts')),
        ),
        this.search.form,
        this.search.results,
        (this.nav = h('nav', { class: 'conv-nav', 'aria-label': 'Conversation list' }, this.list, this.empty)),
      ),
      this.main,
    );
    root.replaceChildren(this.el);
  }

  /** Shows the conversation convID, or the list alone for "". */
  show(convID) {
    const c = convID && this.store.convs.get(convID);
    if (convID && !c && this.store.loaded) {
      this.navigate('/', true);
      return;
    }
    this.el.dataset.view = convID ? 'conv' : 'list';
    this.open = convID;
    if (convID) {
      if (this.main.firstChild !== this.thread.el) this.main.replaceChildren(this.thread.el);
      if (c) {
        this.thread.show(convID);
        if (!matchMedia('(pointer: coarse)').matches) this.thread.focusComposer();
      }
    } else {
      this.thread.hide();
      this.main.replaceChildren(this.placeholder);
    }
    this.#renderList();
  }

  /** Opens a search result: the conversation, loaded down to the message, scrolled to it. */
  async #openResult(conv, seq, id) {
    if (!this.store.convs.has(conv)) return;
    this.navigate('/c/' + conv);
    try {
      await this.store.loadAround(conv, seq);
    } catch {
      // the message is shown if it is loaded; the toast of reveal says otherwise
    }
    setTimeout(() => this.thread.reveal(id), 0);
  }

  #changed({ what, conv }) {
    this.dirty.add(what === 'conv' && conv !== this.open ? 'list' : what);
    if (this.dirty.size === 1) setTimeout(() => this.#render(), 0);
  }

  #render() {
    const dirty = this.dirty;
    this.dirty = new Set();
    if (this.open && !this.thread.convID && this.store.convs.has(this.open)) this.show(this.open);
    if (this.open && !this.store.convs.has(this.open) && this.store.loaded) {
      this.navigate('/', true);
      return;
    }
    if (dirty.has('list') || dirty.has('presence') || dirty.has('typing')) this.#renderList();
    if (this.thread.convID && (dirty.has('conv') || dirty.has('presence') || dirty.has('status') || dirty.has('list'))) this.thread.render();
    else if (dirty.has('typing')) this.thread.renderTyping();
    if (dirty.has('status')) this.#renderBanner();
  }

  #renderList() {
    const store = this.store;
    const convs = [...store.convs.values()].sort((a, b) => activity(b) - activity(a) || (a.id < b.id ? 1 : -1));
    const links = convs.map((c) => {
      let a = this.items.get(c.id);
      if (!a) {
        a = h('a', { class: 'conv', href: '/c/' + c.id, dataset: { conv: c.id } });
        a.addEventListener('click', (e) => {
          if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
          e.preventDefault();
          this.navigate('/c/' + c.id);
        });
        this.items.set(c.id, a);
      }
      this.#fillItem(a, c);
      return a.parentElement ?? h('li', {}, a);
    });
    for (const id of this.items.keys()) if (!store.convs.has(id)) this.items.delete(id);
    replaceKids(this.list, links);
    this.empty.hidden = convs.length > 0 || !store.loaded;
    const myName = store.name(store.me.id);
    this.meName.textContent = myName !== store.me.username ? myName : '';
    const face = store.profile(store.me.id)?.avatar ?? '';
    if (this.meAvatar.dataset.face !== face + '|' + myName) {
      this.meAvatar.dataset.face = face + '|' + myName;
      this.meAvatar.replaceChildren(userAvatar(store, store.me.id, myName || store.me.username, 'small'));
    }
    // A muted conversation's messages do not count in the tab's title.
    const unread = convs.reduce((n, c) => n + (store.levels.get(c.id) === 'none' ? 0 : c.unread), 0);
    document.title = unread ? `(${unread}) Natter` : 'Natter';
  }

  #fillItem(a, c) {
    const store = this.store;
    const name = convName(store, c);
    const typing = store.typists(c.id);
    const level = store.levels.get(c.id);
    a.dataset.name = name;
    a.dataset.unread = c.unread;
    a.dataset.level = level;
    if (c.id === this.open) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
    const last = c.last_message;
    let preview;
    if (typing.length) preview = h('span', { class: 'preview typing-preview' }, typingText(typing));
    else if (!last) preview = h('span', { class: 'preview muted' }, c.kind === 'group' ? 'Group created' : 'No messages yet');
    else {
      const who = last.sender === store.me.id ? 'You: ' : c.kind === 'group' ? store.name(last.sender, 'someone') + ': ' : '';
      const files = last.attachments?.length ? '📎 ' + last.attachments.map((a) => a.name).join(', ') + (last.text ? ' ' : '') : '';
      preview = h('span', { class: last.deleted ? 'preview muted' : 'preview' }, who, last.deleted ? 'Message deleted' : files + last.text.replace(/\s+/g, ' '));
    }
    const when = new Date(last ? last.sent_at : c.created_at);
    a.replaceChildren(
      avatar(store, c),
      h(
        'span',
        { class: 'conv-body' },
        h(
          'span',
          { class: 'conv-top' },
          h('span', { class: 'conv-name' }, name),
          level !== 'all' &&
            h('span', { class: 'level-mark', role: 'img', 'aria-label': level === 'none' ? 'muted' : 'only @mentions', title: level === 'none' ? 'Muted' : 'Only @mentions notify' }, icon(level === 'none' ? 'bellOff' : 'at')),
          h('time', { class: 'conv-time', datetime: when.toISOString() }, listTime(when)),
        ),
        h('span', { class: 'conv-bottom' }, preview, c.unread > 0 && h('span', { class: level === 'none' ? 'badge quiet' : 'badge', 'aria-label': `${c.unread} unread` }, c.unread > 999 ? '999+' : String(c.unread))),
      ),
    );
  }

  #renderBanner() {
    const conn = this.store.conn;
    document.body.dataset.conn = conn.state;
    document.body.dataset.transport = conn.transport;
    document.body.dataset.synced = String(this.store.synced);
    if (conn.online) {
      this.bannerSince = 0;
      this.bannerKey = '';
      this.banner.hidden = true;
      return;
    }
    this.bannerSince ||= Date.now();
    if (Date.now() - this.bannerSince < BANNER_GRACE_MS && navigator.onLine) {
      setTimeout(() => this.#renderBanner(), BANNER_GRACE_MS);
      return;
    }
    const waiting = this.store.outbox.filter((o) => !o.failed).length;
    const secs = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
    const text = !navigator.onLine ? 'You are offline.' : conn.state === 'connecting' ? 'Connecting…' : 'Connection lost.';
    const more = waiting ? ` ${waiting} message${waiting === 1 ? '' : 's'} will be sent when you are back.` : '';
    const key = text + more + conn.state;
    if (this.bannerKey !== key) {
      // Rebuilt only when the news changes, so screen readers hear it once.
      this.bannerKey = key;
      this.countdown = h('span', { class: 'countdown', 'aria-hidden': 'true' });
      const parts = [h('strong', {}, text), more, this.countdown];
      if (conn.state === 'offline') parts.push(h('button', { type: 'button', class: 'link', onclick: () => conn.retryNow() }, 'Retry now'));
      this.banner.replaceChildren(...parts);
    }
    this.countdown.textContent = conn.state === 'offline' && secs ? ` Retrying in ${secs} s.` : '';
    this.banner.dataset.state = conn.state;
    this.banner.hidden = false;
  }

  destroy() {
    clearInterval(this.tick);
    this.search.destroy();
    this.thread.hide();
  }
}

function activity(c) {
  return Date.parse(c.last_message ? c.last_message.sent_at : c.created_at);
}
