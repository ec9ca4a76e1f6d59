// Message search in the sidebar: a search box ("/" focuses it from
// anywhere but a text field) whose results replace the conversation list
// while it holds a query. Snippets are plain text with the server's
// highlight ranges (code points) wrapped in <mark>, built as text nodes.

import { h, debounce } from '../dom.js';
import { listTime } from '../format.js';
import { icon } from './icons.js';
import { convName } from './thread.js';

export class SearchView {
  /** open(convID, seq, messageID) shows a result in its conversation. */
  constructor(store, { open, shown }) {
    this.store = store;
    this.open = open;
    this.shown = shown; // shown(bool): the results replace the conversation list or not
    this.state = { q: '', results: [], next: '' };
    this.input = h('input', {
      id: 'search-input', type: 'search', placeholder: 'Search messages  ( / )', 'aria-label': 'Search messages',
      autocomplete: 'off', spellcheck: 'false', enterkeyhint: 'search', maxlength: '256',
    });
    this.note = h('p', { id: 'search-note', class: 'hint', role: 'status' });
    this.list = h('ul', { id: 'search-results', class: 'search-results', 'aria-label': 'Search results' });
    this.more = h('button', { id: 'search-more', type: 'button', class: 'link more', hidden: true, onclick: () => this.#load(this.state.q, this.state.next) }, 'More results');
    this.results = h('div', { class: 'search-pane', hidden: true }, this.note, this.list, this.more);
    this.form = h('form', { class: 'search-box', role: 'search' }, h('label', { for: 'search-input', class: 'search-icon' }, icon('search')), this.input);
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#search();
    });
    const later = debounce(() => this.#search(), 300);
    this.input.addEventListener('input', later);
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.input.value) {
        e.preventDefault();
        this.clear();
      } else if (e.key === 'ArrowDown') {
        e.preventDefault();
        this.list.querySelector('button')?.focus();
      }
    });
    this.onKey = (e) => {
      const t = e.target;
      if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
      if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t?.isContentEditable || document.querySelector('dialog[open]')) return;
      e.preventDefault();
      this.input.focus();
      this.input.select();
    };
    document.addEventListener('keydown', this.onKey);
  }

  destroy() {
    document.removeEventListener('keydown', this.onKey);
  }

  clear() {
    this.input.value = '';
    this.#search();
  }

  #search() {
    const q = this.input.value.trim();
    if (q === this.state.q && this.state.results.length) return;
    if (!q) {
      this.state = { q: '', results: [], next: '' };
      this.results.hidden = true;
      this.shown(false);
      return;
    }
    this.results.hidden = false;
    this.shown(true);
    this.#load(q, '');
  }

  async #load(q, cursor) {
    const p = new URLSearchParams({ q, limit: '20' });
    if (cursor) p.set('cursor', cursor);
    if (!cursor) this.note.textContent = 'Searching…';
    let res;
    try {
      res = await this.store.api.request('GET', '/v1/search?' + p);
    } catch (e) {
      if (this.input.value.trim() === q) this.note.textContent = e.code === 'invalid_argument' ? 'Type a word or two to search for.' : 'Search failed: ' + e.message;
      return;
    }
    if (this.input.value.trim() !== q) return; // a newer query is on its way
    const results = cursor ? [...this.state.results, ...res.results] : res.results;
    this.state = { q, results, next: res.next_cursor || '' };
    this.note.textContent = results.length ? `${results.length}${this.state.next ? '+' : ''} message${results.length === 1 ? '' : 's'} found` : `No messages with “${q}”.`;
    this.list.replaceChildren(...results.map((r) => h('li', {}, this.#result(r))));
    this.more.hidden = !this.state.next;
  }

  #result(r) {
    const m = r.message;
    const c = this.store.convs.get(m.conv);
    const where = c ? convName(this.store, c) : 'Conversation';
    const who = m.sender === this.store.me.id ? 'You' : this.store.name(m.sender, 'someone');
    const when = new Date(m.sent_at);
    const b = h(
      'button',
      { type: 'button', class: 'search-result', dataset: { conv: m.conv, seq: m.seq, id: m.id } },
      h('span', { class: 'conv-top' }, h('span', { class: 'conv-name' }, where), h('time', { class: 'conv-time', datetime: when.toISOString() }, listTime(when))),
      h('span', { class: 'snippet' }, h('strong', {}, who + ': '), highlighted(r.snippet, r.highlights || [])),
    );
    b.addEventListener('click', () => this.open(m.conv, m.seq, m.id));
    b.addEventListener('keydown', (e) => {
      const li = b.parentElement;
      const to = e.key === 'ArrowDown' ? li.nextElementSibling : e.key === 'ArrowUp' ? li.previousElementSibling : null;
      if (to) {
        e.preventDefault();
        to.querySelector('button').focus();
      } else if (e.key === 'ArrowUp') {
        e.preventDefault();
        this.input.focus();
      }
    });
    return b;
  }
}

/** snippet as text nodes, with the [start, end) code point ranges in <mark>. */
export function highlighted(snippet, ranges) {
  const chars = Array.from(snippet);
  const out = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start < at || end <= start || end > chars.length) continue; // malformed: leave as text
    out.push(chars.slice(at, start).join(''), h('mark', {}, chars.slice(start, end).join('')));
    at = end;
  }
  out.push(chars.slice(at).join(''));
  return out.filter((s) => s !== '');
}
