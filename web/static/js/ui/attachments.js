// Attachments in the UI: the composer's tray of files being uploaded
// (picked with a keyboard-reachable button), and the files of a message:
// images as thumbnails that open the full image, other files as download
// links with name and size. Names are always text; every URL is a signed
// download URL of the server's (no token in it).

import { h } from '../dom.js';
import { byteSize, upload } from '../files.js';
import { icon } from './icons.js';
import { modal, toast } from './dialogs.js';

const MAX_FILES = 10; // per message (protocol limit)

/** The composer's attach button, hidden file input and upload tray. */
export class AttachTray {
  constructor(store, onChange) {
    this.store = store;
    this.onChange = onChange;
    this.items = []; // {id, file, sent, total, attachment, error, abort}
    this.input = h('input', { id: 'attach-input', type: 'file', multiple: true, class: 'visually-hidden', tabindex: '-1', 'aria-hidden': 'true' });
    this.button = h('button', { id: 'attach', type: 'button', class: 'ghost icon-button', 'aria-label': 'Attach files', title: 'Attach files', onclick: () => this.input.click() }, icon('attach'));
    this.el = h('ul', { id: 'attach-tray', class: 'attach-tray', 'aria-label': 'Files to send', hidden: true });
    this.input.addEventListener('change', () => {
      this.add([...this.input.files]);
      this.input.value = '';
    });
  }

  /** Starts uploading files to the conversation shown now. */
  add(files) {
    const conv = this.conv;
    for (const file of files) {
      if (this.items.length >= MAX_FILES) {
        toast(`At most ${MAX_FILES} files per message.`);
        break;
      }
      const ctl = new AbortController();
      const item = { key: Math.random().toString(36).slice(2), file, sent: 0, total: file.size, attachment: null, error: '', abort: () => ctl.abort() };
      this.items.push(item);
      upload(this.store.api, conv, file, (sent, total) => ((item.sent = sent), (item.total = total), this.render()), ctl.signal).then(
        (a) => ((item.attachment = a), this.render()),
        (e) => ((item.error = e.code === 'unsupported_media_type' ? 'this type of file cannot be sent' : e.message), this.render()),
      );
    }
    this.render();
  }

  /** True while a file is still uploading. */
  get busy() {
    return this.items.some((i) => !i.attachment && !i.error);
  }

  /** The ready attachments, in the order picked. */
  get ready() {
    return this.items.filter((i) => i.attachment).map((i) => i.attachment);
  }

  /** Forgets everything (after sending, or when another conversation opens). */
  clear(abort = false) {
    if (abort) for (const i of this.items) if (!i.attachment) i.abort();
    this.items = [];
    this.render();
  }

  render() {
    this.el.hidden = this.items.length === 0;
    this.el.replaceChildren(
      ...this.items.map((i) => {
        const state = i.error ? 'failed' : i.attachment ? 'ready' : 'uploading';
        return h(
          'li',
          { class: 'attach-item', dataset: { state } },
          icon('file'),
          h('span', { class: 'attach-name' }, i.file.name),
          state === 'uploading'
            ? h('progress', { max: String(i.total || 1), value: String(i.sent), 'aria-label': 'Uploading ' + i.file.name })
            : h('span', { class: 'attach-note', role: i.error ? 'alert' : null }, i.error ? 'Not uploaded: ' + i.error : byteSize(i.attachment.size)),
          h('button', {
            type: 'button', class: 'ghost icon-button', 'aria-label': 'Remove ' + i.file.name,
            onclick: () => {
              i.abort();
              this.items = this.items.filter((x) => x !== i);
              this.render();
            },
          }, icon('close')),
        );
      }),
    );
    this.onChange();
  }
}

/** The files of message m, or null when it has none. */
export function attachmentList(store, m) {
  if (!m.attachments?.length || m.deleted) return null;
  return h('ul', { class: 'attachments', 'aria-label': 'Attachments' }, m.attachments.map((a) => h('li', {}, attachmentView(store, a))));
}

function attachmentView(store, a) {
  const label = `${a.name} (${byteSize(a.size)})`;
  if (/^image\/(png|jpeg|gif|webp)$/.test(a.content_type)) {
    const img = h('img', { class: 'att-thumb', alt: a.name, width: a.width && thumbSize(a).w, height: a.height && thumbSize(a).h, dataset: { attachment: a.id } });
    const open = h('button', { type: 'button', class: 'att-image', title: label, 'aria-label': 'Open image ' + label, onclick: () => viewer(store, a) }, img);
    store.files.get(a.id).then((u) => (img.src = u.thumbnail_url || u.url), () => (img.alt = a.name + ' (unavailable)'));
    return open;
  }
  const link = h('a', { class: 'att-file', download: a.name, rel: 'noopener', dataset: { attachment: a.id } }, icon('file'), h('span', { class: 'att-name' }, a.name), h('span', { class: 'att-size' }, byteSize(a.size)));
  store.files.get(a.id).then((u) => (link.href = u.url), () => link.classList.add('unavailable'));
  return link;
}

function thumbSize(a) {
  const k = Math.min(1, 320 / Math.max(a.width, a.height));
  return { w: Math.round(a.width * k), h: Math.round(a.height * k) };
}

/** The full image in a dialog, with a download link. */
function viewer(store, a) {
  const img = h('img', { id: 'image-full', class: 'image-full', alt: a.name });
  const link = h('a', { class: 'link', download: a.name }, 'Download ' + a.name);
  modal('dlg-image', a.name, h('div', { class: 'dialog-body image-view' }, img, link));
  store.files.get(a.id).then(
    (u) => {
      img.src = u.url;
      link.href = u.url;
    },
    (e) => toast('Could not open the image: ' + e.message),
  );
}
