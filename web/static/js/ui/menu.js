// The actions menu of one message: react, reply, edit, delete. It opens
// next to the message's "…" button, takes focus, is driven by arrow keys,
// and closes on Escape, on a choice or on a click elsewhere.

import { h } from '../dom.js';
import { icon } from './icons.js';
import { toast } from './dialogs.js';

export const EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

export class MessageMenu {
  constructor(store, actions) {
    this.store = store;
    this.actions = actions; // {reply(m), edit(m), remove(m)}
    this.el = null;
    this.onOutside = (e) => {
      if (this.el && !this.el.contains(e.target)) this.close();
    };
  }

  open(c, m, msgEl, button) {
    this.close();
    const me = this.store.me.id;
    const mine = m.sender === me;
    const role = this.store.mine(c)?.role;
    const canDelete = mine || (c.kind === 'group' && (role === 'owner' || role === 'admin'));
    const choose = (fn) => () => {
      this.close(false);
      fn();
    };
    const reacted = new Set((m.reactions || []).filter((r) => r.users.includes(me)).map((r) => r.emoji));
    const item = (name, label, fn, cls = '') => h('button', { type: 'button', role: 'menuitem', class: 'menu-item ' + cls, dataset: { action: name }, onclick: choose(fn) }, icon(name === 'delete' ? 'trash' : name), label);
    this.el = h(
      'div',
      { class: 'menu', role: 'menu', id: 'msg-menu', 'aria-label': 'Message actions' },
      h(
        'div',
        { class: 'menu-emoji', role: 'group', 'aria-label': 'React' },
        EMOJI.map((e) =>
          h('button', {
            type: 'button', role: 'menuitem', class: reacted.has(e) ? 'emoji on' : 'emoji', dataset: { emoji: e },
            'aria-label': (reacted.has(e) ? 'Remove reaction ' : 'React with ') + e,
            onclick: choose(() => this.store.react(c.id, m.id, e, !reacted.has(e)).catch((err) => toast('Could not react: ' + err.message))),
          }, e),
        ),
      ),
      item('reply', 'Reply', () => this.actions.reply(m)),
      mine && item('edit', 'Edit', () => this.actions.edit(m)),
      canDelete && item('delete', 'Delete', () => this.actions.remove(m), 'danger'),
    );
    this.button = button;
    this.openFor = m.id;
    this.el.addEventListener('keydown', (e) => this.#key(e));
    msgEl.append(this.el);
    msgEl.classList.add('menu-open');
    this.el.querySelector('button').focus();
    setTimeout(() => document.addEventListener('pointerdown', this.onOutside, true));
  }

  #key(e) {
    const items = [...this.el.querySelectorAll('[role=menuitem]')];
    const i = items.indexOf(document.activeElement);
    const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[e.key];
    if (step) {
      e.preventDefault();
      items[(i + step + items.length) % items.length].focus();
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      items[e.key === 'Home' ? 0 : items.length - 1].focus();
    } else if (e.key === 'Escape' || e.key === 'Tab') {
      e.preventDefault();
      this.close();
    }
  }

  /** Moves the open menu into msgEl, the rebuilt element of its message. */
  adopt(msgEl) {
    msgEl.append(this.el);
    msgEl.classList.add('menu-open');
    this.button = msgEl.querySelector('.msg-more');
  }

  /** Closes the menu; refocus returns focus to the button that opened it. */
  close(refocus = true) {
    this.openFor = '';
    if (!this.el) return;
    document.removeEventListener('pointerdown', this.onOutside, true);
    this.el.parentElement?.classList.remove('menu-open');
    this.el.remove();
    this.el = null;
    if (refocus && this.button?.isConnected) this.button.focus();
  }
}
