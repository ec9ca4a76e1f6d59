// The conversation view: header, message log (history loaded lazily as
// one scrolls up), typing line, and the composer with reply, edit and
// @mention completion.

import { h, replaceKids } from '../dom.js';
import { clock, dayKey, dayLabel, fullTime, presenceText, tint, typingText } from '../format.js';
import { icon } from './icons.js';
import { richText } from './text.js';
import { MessageMenu } from './menu.js';
import { confirmDialog, toast } from './dialogs.js';
import { AttachTray, attachmentList } from './attachments.js';
import { userAvatar } from './avatar.js';

/** The notification levels, as the conversation menu offers them. */
export const LEVELS = [
  ['all', 'All messages'],
  ['mentions', 'Only @mentions'],
  ['none', 'Nothing (muted)'],
];

const RUN_GAP_MS = 5 * 60_000; // messages of one sender closer than this form one run
const LOAD_OLDER_PX = 400;

/** The display name of a conversation. */
export function convName(store, c) {
  if (c.kind === 'direct') return store.name(store.peer(c)) || 'Direct chat';
  if (c.title) return c.title;
  const names = c.members.filter((m) => m.user !== store.me.id).map((m) => store.name(m.user, m.username || '…'));
  return names.length ? names.join(', ') : 'Group';
}

/** A conversation's avatar: the other person's (with presence) or the group icon. */
export function avatar(store, c, cls = '') {
  if (c.kind === 'group') return h('span', { class: `avatar ${tint(c.id)} ${cls}`, 'aria-hidden': 'true' }, icon('group'));
  const peer = store.peer(c);
  const el = userAvatar(store, peer, convName(store, c), cls);
  el.append(h('span', { class: 'dot', dataset: { status: store.presence.get(peer)?.status || 'offline' } }));
  return el;
}

export class ThreadView {
  constructor(store, { navigate, openGroup, openProfile }) {
    this.store = store;
    this.navigate = navigate;
    this.openGroup = openGroup;
    this.openProfile = openProfile; // openProfile(userID): the person's profile card
    this.convID = '';
    this.nodes = new Map(); // key -> {el, sig}
    this.drafts = new Map(); // conv id -> unsent text
    this.mode = null; // {kind: 'reply' | 'edit', msg}
    this.editing = false; // the composer holds a message being edited (the draft is put aside)
    this.stick = true;
    this.menu = new MessageMenu(store, {
      reply: (m) => this.#setMode('reply', m),
      edit: (m) => this.#setMode('edit', m),
      remove: (m) => this.#remove(m),
    });
    this.#build();
  }

  #build() {
    this.title = h('h2', { id: 'thread-title' });
    this.sub = h('p', { id: 'thread-sub', class: 'sub' });
    this.mutedMark = h('span', { id: 'thread-muted', class: 'level-mark', role: 'img', hidden: true });
    this.avatarSlot = h('span', { class: 'avatar-slot' });
    this.infoButton = h('button', { id: 'thread-info', type: 'button', class: 'ghost icon-button', 'aria-label': 'Group members and settings', onclick: () => this.openGroup(this.convID) }, icon('group'));
    this.log = h('div', { id: 'log', class: 'log', role: 'log', 'aria-label': 'Messages', tabindex: '0' });
    this.jump = h('button', { id: 'jump', type: 'button', class: 'jump', hidden: true, 'aria-label': 'Jump to the newest message', onclick: () => this.#toBottom() }, icon('down'));
    this.typingLine = h('div', { id: 'typing', class: 'typing', 'aria-live': 'polite' });
    this.context = h('div', { id: 'composer-context', class: 'context', hidden: true });
    this.suggest = h('ul', { id: 'mention-list', class: 'suggest', role: 'listbox', hidden: true, 'aria-label': 'Mention someone' });
    this.input = h('textarea', { id: 'composer-input', rows: '1', 'aria-label': 'Message', maxlength: '16384', autocomplete: 'off' });
    this.sendButton = h('button', { id: 'composer-send', type: 'submit', class: 'primary icon-button', 'aria-label': 'Send' }, icon('send'));
    this.tray = new AttachTray(this.store, () => this.form?.classList.toggle('has-files', this.tray.items.length > 0));
    this.form = h('form', { id: 'composer', class: 'composer' }, this.suggest, this.tray.input, this.tray.button, this.input, this.sendButton);
    this.menuButton = h('button', { id: 'thread-menu', type: 'button', class: 'ghost icon-button', 'aria-label': 'Conversation actions', 'aria-haspopup': 'menu', onclick: () => this.#convMenu() }, icon('more'));
    this.el = h(
      'section',
      { id: 'thread', class: 'thread', 'aria-labelledby': 'thread-title' },
      h(
        'header',
        { class: 'thread-head' },
        h('button', { type: 'button', class: 'ghost icon-button back', 'aria-label': 'Back to conversations', onclick: () => this.navigate('/') }, icon('back')),
        this.avatarSlot,
        h('div', { class: 'titles' }, h('div', { class: 'title-line' }, this.title, this.mutedMark), this.sub),
        this.infoButton,
        this.menuButton,
      ),
      h('div', { class: 'log-wrap' }, this.log, this.jump),
      this.typingLine,
      this.context,
      this.tray.el,
      this.form,
    );
    this.log.addEventListener('scroll', () => this.#onScroll());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#submit();
    });
    this.input.addEventListener('keydown', (e) => this.#onKey(e));
    this.input.addEventListener('input', () => {
      this.store.typed(this.convID, this.input.value.trim() !== '' && this.mode?.kind !== 'edit');
      this.#suggestMentions();
    });
  }

  /** Shows a conversation (the element must be in the document). */
  async show(convID) {
    if (this.convID && this.convID !== convID) {
      if (!this.editing) this.drafts.set(this.convID, this.input.value);
      this.store.stoppedTyping();
    }
    if (this.convID !== convID) {
      this.convID = convID;
      this.nodes.clear();
      this.mode = null;
      this.editing = false;
      this.stick = true;
      this.input.value = this.drafts.get(convID) || '';
      this.tray.clear(true);
      this.tray.conv = convID;
      this.#renderContext();
      this.log.replaceChildren();
    }
    this.store.openConv = convID;
    this.store.atBottom = true;
    this.render();
    try {
      await this.store.openHistory(convID);
    } catch {
      toast('Could not load the messages. They will appear when the connection is back.');
    }
  }

  hide() {
    if (this.convID && !this.editing) this.drafts.set(this.convID, this.input.value);
    this.store.stoppedTyping();
    this.store.openConv = '';
    this.convID = '';
    this.menu.close();
  }

  focusComposer() {
    this.input.focus();
  }

  render() {
    const c = this.store.convs.get(this.convID);
    if (!c) return;
    this.el.dataset.conv = c.id;
    this.el.dataset.kind = c.kind;
    const name = convName(this.store, c);
    this.title.textContent = name;
    const face = avatar(this.store, c);
    const peer = this.store.peer(c);
    this.avatarSlot.replaceChildren(
      c.kind === 'direct' && peer
        ? h('button', { id: 'thread-profile', type: 'button', class: 'ghost avatar-button', 'aria-label': 'Profile of ' + name, title: 'Profile', onclick: () => this.openProfile(peer) }, face)
        : face,
    );
    this.infoButton.hidden = c.kind !== 'group';
    const level = this.store.levels.get(c.id);
    this.mutedMark.hidden = level === 'all';
    this.mutedMark.dataset.level = level;
    this.mutedMark.setAttribute('aria-label', level === 'none' ? 'Muted' : 'Notifications only for @mentions');
    this.mutedMark.title = this.mutedMark.getAttribute('aria-label');
    this.mutedMark.replaceChildren(icon(level === 'none' ? 'bellOff' : 'at'));
    this.input.placeholder = 'Message ' + convName(this.store, c);
    this.#renderSub(c);
    this.#renderLog(c);
    this.renderTyping();
  }

  #renderSub(c) {
    if (c.kind === 'direct') {
      const p = this.store.presence.get(this.store.peer(c));
      this.sub.textContent = presenceText(p);
      this.sub.dataset.status = p?.status || '';
    } else {
      this.sub.textContent = `${c.members.length} member${c.members.length === 1 ? '' : 's'}`;
      delete this.sub.dataset.status;
    }
  }

  renderTyping() {
    const names = this.store.typists(this.convID);
    this.typingLine.replaceChildren(...(names.length ? [h('span', { class: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), typingText(names)] : []));
    this.typingLine.classList.toggle('on', names.length > 0);
  }

  #renderLog(c) {
    const store = this.store;
    const focused = this.log.contains(document.activeElement) ? document.activeElement : null;
    const items = c.msgs ? [...c.msgs.values()].sort((a, b) => a.seq - b.seq) : [];
    const pending = store.pending(c.id);
    const nodes = [];
    const used = new Set();
    // Reuses the node of key while sig is unchanged, so a render touches only what changed.
    const keyed = (key, sig, build) => {
      let rec = this.nodes.get(key);
      if (!rec || rec.sig !== sig) this.nodes.set(key, (rec = { el: build(), sig }));
      used.add(key);
      nodes.push(rec.el);
      return rec.el;
    };
    const note = !c.msgs ? 'Loading messages…' : c.hasOlder ? 'Loading earlier messages…' : items.length || pending.length ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
    keyed('note', note, () => h('p', { class: 'log-note', id: !c.msgs ? null : c.hasOlder ? 'log-older' : 'log-start' }, note));
    let prev = null;
    const all = [...items.map((m) => ({ m, pending: false })), ...pending.map((p) => ({ m: outboxMessage(store, p), pending: true, item: p }))];
    for (const { m, pending: isPending, item } of all) {
      const at = new Date(m.sent_at);
      const day = dayKey(at);
      if (!prev || dayKey(prev.at) !== day) keyed('d' + day, dayLabel(at), () => h('div', { class: 'day', role: 'separator' }, h('span', {}, dayLabel(at))));
      const first = !prev || prev.m.sender !== m.sender || dayKey(prev.at) !== day || at - prev.at > RUN_GAP_MS;
      const [status, statusText] = isPending ? [item.failed ? 'failed' : 'sending', item.failed ? 'Not sent' : store.conn.online ? 'Sending…' : 'Waiting for the connection'] : m.sender === store.me.id ? store.receiptOf(c, m) : ['', ''];
      const target = m.reply_to ? store.replyTarget(c, m.reply_to) : null;
      const names = [m.sender, target?.sender, ...(m.mentions || [])].map((u) => store.name(u));
      const face = c.kind === 'group' && m.sender !== store.me.id ? store.profile(m.sender)?.avatar ?? '' : '';
      const sig = [m.pos, status, statusText, first, target?.pos ?? '', c.kind, item?.failed, store.blocked.has(m.sender), face, ...names].join('|');
      const el = keyed(isPending ? 'p' + item.client_id : 'm' + m.id, sig, () => this.#message(c, m, { first, status, statusText, target, item }));
      if (this.menu.openFor === m.id && m.id && !el.contains(this.menu.el)) this.menu.adopt(el);
      prev = { m, at };
    }
    for (const key of this.nodes.keys()) if (!used.has(key)) this.nodes.delete(key);
    this.#place(nodes);
    if (focused?.isConnected && document.activeElement !== focused) focused.focus({ preventScroll: true });
    this.#maybeLoadOlder(c);
  }

  /** Replaces the log's content, keeping the reader's place (or the bottom). */
  #place(nodes) {
    const log = this.log;
    let anchor = null;
    let offset = 0;
    if (!this.stick) {
      for (const el of log.children) {
        if (el.offsetTop + el.offsetHeight > log.scrollTop && el.classList.contains('msg')) {
          anchor = el;
          offset = el.offsetTop - log.scrollTop;
          break;
        }
      }
    }
    replaceKids(log, nodes);
    if (this.stick) log.scrollTop = log.scrollHeight;
    else if (anchor?.isConnected) log.scrollTop = anchor.offsetTop - offset;
  }

  #message(c, m, { first, status, statusText, target, item }) {
    const store = this.store;
    const mine = m.sender === store.me.id;
    const mentionNames = new Set((m.mentions || []).map((id) => (store.usernames.get(id) || '').toLowerCase()).filter(Boolean));
    const mentionsMe = (m.mentions || []).includes(store.me.id) && !mine;
    const withAvatar = c.kind === 'group' && !mine;
    const cls = ['msg', mine ? 'mine' : 'theirs', first && 'first', m.deleted && 'deleted', item && 'pending', mentionsMe && 'mentions-me', withAvatar && 'with-avatar'].filter(Boolean).join(' ');
    const el = h('div', {
      class: cls,
      id: item ? null : 'm-' + m.id,
      dataset: { seq: item ? '' : m.seq, id: item ? '' : m.id, clientId: m.client_id, sender: m.sender, status: status || null },
    });
    if (withAvatar && first) {
      const who = store.name(m.sender, 'someone');
      el.append(h('button', { type: 'button', class: 'ghost msg-avatar', 'aria-label': 'Profile of ' + who, title: who, onclick: () => this.openProfile(m.sender) }, userAvatar(store, m.sender, who, 'small')));
    }
    const bubble = h('div', { class: 'bubble' });
    if (!mine && first && c.kind === 'group') bubble.append(h('span', { class: `sender ${tint(m.sender)}` }, store.name(m.sender, 'someone')));
    if (m.reply_to) bubble.append(this.#quote(c, m.reply_to, target));
    if (m.deleted) bubble.append(h('p', { class: 'text gone' }, 'This message was deleted.'));
    else if (c.kind === 'group' && store.blocked.has(m.sender)) bubble.append(h('p', { class: 'text gone' }, 'Message from someone you blocked.'));
    else {
      if (m.text || !m.attachments?.length) bubble.append(h('p', { class: 'text' }, richText(m.text, mentionNames, store.me.username)));
      bubble.append(attachmentList(store, m) ?? []);
    }
    const at = new Date(m.sent_at);
    const meta = h('span', { class: 'meta' });
    if (m.edited_at && !m.deleted) meta.append(h('span', { class: 'edited', title: 'Edited ' + fullTime(new Date(m.edited_at)) }, 'edited'));
    meta.append(h('time', { datetime: m.sent_at, title: fullTime(at) }, clock(at)));
    if (status) meta.append(h('span', { class: 'status', title: statusText, 'aria-label': statusText, role: 'img' }, icon({ sending: 'clock', sent: 'check', delivered: 'checks', read: 'checks', failed: 'alert' }[status])));
    bubble.append(meta);
    el.append(bubble);
    if (item?.failed) el.append(this.#failedBar(item));
    if (m.reactions?.length) el.append(this.#reactions(c, m));
    if (!item && !m.deleted) {
      const more = h('button', { type: 'button', class: 'msg-more ghost icon-button', 'aria-label': 'Message actions', 'aria-haspopup': 'menu' }, icon('more'));
      more.addEventListener('click', () => this.menu.open(c, m, el, more));
      el.append(more);
    }
    return el;
  }

  #quote(c, id, target) {
    const who = target ? (target.sender === this.store.me.id ? 'You' : this.store.name(target.sender, 'someone')) : '';
    const what = !target ? 'Original message' : target.deleted ? 'Message deleted' : target.text;
    return h(
      'button',
      { type: 'button', class: 'quote', 'aria-label': 'Show the message this replies to', onclick: () => this.#flash(id) },
      who && h('span', { class: 'quote-who' }, who),
      h('span', { class: 'quote-text' }, what.length > 140 ? what.slice(0, 140) + '…' : what),
    );
  }

  #failedBar(item) {
    return h(
      'div',
      { class: 'failed-bar' },
      h('span', {}, 'Not sent: ' + item.failed),
      h('button', { type: 'button', class: 'link', onclick: () => this.store.retry(item.client_id) }, 'Retry'),
      h('button', { type: 'button', class: 'link', onclick: () => this.store.discard(item.client_id) }, 'Discard'),
    );
  }

  #reactions(c, m) {
    const me = this.store.me.id;
    return h(
      'div',
      { class: 'reactions' },
      m.reactions.map((r) => {
        const on = r.users.includes(me);
        const who = r.users.map((u) => (u === me ? 'you' : this.store.name(u, 'someone'))).join(', ');
        return h(
          'button',
          {
            type: 'button', class: on ? 'reaction on' : 'reaction', 'aria-pressed': String(on), title: who,
            dataset: { emoji: r.emoji }, 'aria-label': `${r.emoji} ${r.count}, by ${who}`,
            onclick: () => this.store.react(c.id, m.id, r.emoji, !on).catch((e) => toast('Could not react: ' + e.message)),
          },
          h('span', { class: 'emoji' }, r.emoji),
          h('span', { class: 'count' }, String(r.count)),
        );
      }),
    );
  }

  /** Scrolls to message id and highlights it (search results open here). */
  reveal(id) {
    this.stick = false;
    this.#flash(id);
  }

  #flash(id) {
    const el = this.log.querySelector('#m-' + CSS.escape(id));
    if (!el) {
      toast('That message is further up; scroll to load it.');
      return;
    }
    el.scrollIntoView({ block: 'center', behavior: 'smooth' });
    el.classList.remove('flash');
    void el.offsetWidth;
    el.classList.add('flash');
  }

  #onScroll() {
    const log = this.log;
    this.stick = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    this.jump.hidden = this.stick;
    if (this.store.atBottom !== this.stick) {
      this.store.atBottom = this.stick;
      if (this.stick) this.store.scheduleReceipts(this.convID);
    }
    const c = this.store.convs.get(this.convID);
    if (c) this.#maybeLoadOlder(c);
  }

  #maybeLoadOlder(c) {
    if (!c.msgs || !c.hasOlder || c.loadingOlder || this.log.scrollTop > LOAD_OLDER_PX) return;
    this.store.loadOlder(c.id).catch(() => {});
  }

  #toBottom() {
    this.stick = true;
    this.log.scrollTop = this.log.scrollHeight;
    this.input.focus();
  }

  // ---- composer ----

  #setMode(kind, msg) {
    this.mode = kind ? { kind, msg } : null;
    if (kind === 'edit') {
      if (!this.editing) this.drafts.set(this.convID, this.input.value);
      this.input.value = msg.text;
      this.store.stoppedTyping();
    } else if (this.editing) {
      this.input.value = this.drafts.get(this.convID) || '';
    }
    this.editing = kind === 'edit';
    this.#renderContext();
    this.input.focus();
    this.input.setSelectionRange(this.input.value.length, this.input.value.length);
  }

  #renderContext() {
    const mode = this.mode;
    this.context.hidden = !mode;
    this.form.classList.toggle('editing', mode?.kind === 'edit');
    if (!mode) {
      this.context.replaceChildren();
      return;
    }
    const m = mode.msg;
    const who = m.sender === this.store.me.id ? 'yourself' : this.store.name(m.sender, 'someone');
    this.context.dataset.mode = mode.kind;
    this.context.replaceChildren(
      icon(mode.kind === 'edit' ? 'edit' : 'reply'),
      h('div', { class: 'context-text' }, h('strong', {}, mode.kind === 'edit' ? 'Editing message' : 'Replying to ' + who), h('span', {}, m.text.length > 120 ? m.text.slice(0, 120) + '…' : m.text)),
      h('button', { type: 'button', class: 'ghost icon-button', 'aria-label': mode.kind === 'edit' ? 'Cancel editing (Escape)' : 'Cancel reply (Escape)', onclick: () => this.#setMode(null) }, icon('close')),
    );
  }

  async #submit() {
    const text = this.input.value.trim();
    const mode = this.mode;
    if (mode?.kind === 'edit') {
      if (!text || text === mode.msg.text) {
        this.#setMode(null);
        return;
      }
      try {
        await this.store.edit(this.convID, mode.msg.id, text);
        this.#setMode(null);
      } catch (e) {
        toast('Could not save the edit: ' + e.message);
      }
      return;
    }
    if (this.tray.busy) {
      toast('Wait for the files to finish uploading.');
      return;
    }
    const files = this.tray.ready;
    if (!text && !files.length) return;
    this.store.send(this.convID, text, mode?.kind === 'reply' ? mode.msg.id : '', files);
    this.tray.clear();
    this.input.value = '';
    this.drafts.delete(this.convID);
    this.#hideSuggest();
    this.stick = true;
    if (mode) this.#setMode(null);
    this.render();
  }

  #onKey(e) {
    if (!this.suggest.hidden && this.#suggestKey(e)) return;
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.#submit();
    } else if (e.key === 'Escape' && this.mode) {
      e.preventDefault();
      this.#setMode(null);
    } else if (e.key === 'ArrowUp' && !this.input.value && !this.mode) {
      const c = this.store.convs.get(this.convID);
      const own = c?.msgs && [...c.msgs.values()].filter((m) => m.sender === this.store.me.id && !m.deleted).sort((a, b) => b.seq - a.seq)[0];
      if (own) {
        e.preventDefault();
        this.#setMode('edit', own);
      }
    }
  }

  /**
   * The conversation's menu: its notification level; for a direct one
   * also the other person's profile, contact and block. Arrow keys move,
   * Escape and Tab close it.
   */
  #convMenu() {
    const c = this.store.convs.get(this.convID);
    if (!c) return;
    document.getElementById('conv-menu')?.remove();
    const store = this.store;
    const close = () => {
      menu.remove();
      document.removeEventListener('pointerdown', outside, true);
      this.menuButton.focus();
    };
    const outside = (e) => !menu.contains(e.target) && close();
    const run = (fn) => async () => {
      close();
      await fn();
    };
    const level = store.levels.get(c.id);
    const items = LEVELS.map(([value, label]) =>
      h('button', {
        type: 'button', role: 'menuitemradio', class: 'menu-item level-item', 'aria-checked': String(level === value), dataset: { level: value },
        onclick: run(async () => {
          try {
            await store.levels.set(c.id, value);
            toast(value === 'all' ? 'Notifications on for every message.' : value === 'mentions' ? 'Notifications only when you are @mentioned.' : 'Conversation muted.');
          } catch (e) {
            toast('Could not change notifications: ' + e.message);
          }
        }),
      }, icon(value === 'all' ? 'bell' : value === 'mentions' ? 'at' : 'bellOff'), label),
    );
    const groups = [h('div', { role: 'group', class: 'menu-group', 'aria-label': 'Notifications' }, h('p', { class: 'menu-label', 'aria-hidden': 'true' }, 'Notifications'), items)];
    if (c.kind === 'direct') groups.push(h('div', { role: 'group', class: 'menu-group', 'aria-label': 'Person' }, this.#personItems(c, run)));
    const menu = h('div', { id: 'conv-menu', class: 'menu conv-menu', role: 'menu', 'aria-label': 'Conversation actions' }, groups);
    menu.addEventListener('keydown', (e) => {
      const all = [...menu.querySelectorAll('[role^=menuitem]')];
      const step = { ArrowDown: 1, ArrowUp: -1 }[e.key];
      if (step) {
        e.preventDefault();
        all[(all.indexOf(document.activeElement) + step + all.length) % all.length].focus();
      } else if (e.key === 'Escape' || e.key === 'Tab') {
        e.preventDefault();
        close();
      }
    });
    this.menuButton.after(menu);
    (menu.querySelector('[aria-checked=true]') ?? menu.querySelector('[role^=menuitem]')).focus();
    // The level may have changed on another device since the list was read.
    store.levels.refresh(c.id).then(
      (now) => items.forEach((b) => b.setAttribute('aria-checked', String(b.dataset.level === now))),
      () => {}, // offline, or not a member any more: the menu shows what was read
    );
    setTimeout(() => document.addEventListener('pointerdown', outside, true));
  }

  /** A direct conversation's items about the other person: profile, contact, block. */
  #personItems(c, run) {
    const store = this.store;
    const peer = store.peer(c);
    const name = convName(store, c);
    const blocked = store.blocked.has(peer);
    const contact = store.contacts.has(peer);
    const item = (action, label, fn, cls = '') => h('button', { type: 'button', role: 'menuitem', class: ('menu-item ' + cls).trim(), dataset: { action }, onclick: run(fn) }, label);
    return [
      item('profile', 'View profile', () => this.openProfile(peer)),
      item(contact ? 'contact-remove' : 'contact-add', contact ? 'Remove from contacts' : 'Add to contacts', async () => {
        try {
          await store.contacts.set(peer, !contact, store.profile(peer));
          toast(contact ? `${name} is no longer a contact.` : `${name} is now a contact.`);
        } catch (e) {
          toast('Could not change your contacts: ' + e.message);
        }
      }),
      item(blocked ? 'unblock' : 'block', (blocked ? 'Unblock ' : 'Block ') + name, async () => {
        if (!blocked && !(await confirmDialog(`Block ${name}? They will not be able to message you here.`, 'Block'))) return;
        try {
          await store.setBlocked(peer, !blocked);
          toast(blocked ? `${name} is unblocked.` : `${name} is blocked.`);
        } catch (e) {
          toast('Could not change the block: ' + e.message);
        }
      }, blocked ? '' : 'danger'),
    ];
  }

  async #remove(m) {
    if (!(await confirmDialog('Delete this message for everyone?', 'Delete'))) return;
    try {
      await this.store.remove(this.convID, m.id);
    } catch (e) {
      toast('Could not delete: ' + e.message);
    }
  }

  // ---- @mention completion ----

  #suggestMentions() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const match = before.match(/(?:^|[^A-Za-z0-9_@])@([A-Za-z0-9_.-]{0,32})$/);
    const c = this.store.convs.get(this.convID);
    if (!match || !c) return this.#hideSuggest();
    const prefix = match[1].toLowerCase();
    const names = c.members
      .map((m) => m.username)
      .filter((n) => n && n !== this.store.me.username && n.startsWith(prefix))
      .slice(0, 6);
    // Nothing to offer, or the name is typed out already (Enter then sends).
    if (!names.length || (names.length === 1 && names[0] === prefix)) return this.#hideSuggest();
    this.suggestion = { start: before.length - prefix.length, names, active: 0 };
    this.#renderSuggest();
  }

  #renderSuggest() {
    const s = this.suggestion;
    this.suggest.hidden = false;
    this.input.setAttribute('aria-controls', 'mention-list');
    this.input.setAttribute('aria-activedescendant', 'mention-' + s.active);
    this.suggest.replaceChildren(
      ...s.names.map((n, i) =>
        h('li', { id: 'mention-' + i, role: 'option', 'aria-selected': String(i === s.active), onmousedown: (e) => (e.preventDefault(), this.#acceptMention(n)) }, '@' + n),
      ),
    );
  }

  #suggestKey(e) {
    const s = this.suggestion;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      s.active = (s.active + (e.key === 'ArrowDown' ? 1 : s.names.length - 1)) % s.names.length;
      this.#renderSuggest();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      this.#acceptMention(s.names[s.active]);
    } else if (e.key === 'Escape') {
      this.#hideSuggest();
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }

  #acceptMention(name) {
    const s = this.suggestion;
    const v = this.input.value;
    const caret = this.input.selectionStart;
    this.input.value = v.slice(0, s.start) + name + ' ' + v.slice(caret);
    const at = s.start + name.length + 1;
    this.input.setSelectionRange(at, at);
    this.#hideSuggest();
    this.input.focus();
  }

  #hideSuggest() {
    this.suggest.hidden = true;
    this.input.removeAttribute('aria-activedescendant');
  }
}

/** An outbox item shown as a message of the user's. */
function outboxMessage(store, item) {
  return { id: '', seq: 0, pos: 0, conv: item.conv, sender: store.me.id, client_id: item.client_id, text: item.text, sent_at: item.at, reply_to: item.reply_to, attachments: item.attachments };
}
