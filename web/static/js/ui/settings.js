// The settings dialog: notifications (this browser's Web Push switch and
// whether notifications may show message text), the data export, and
// deleting the account, which has a confirmation dialog of its own.

import { h } from '../dom.js';
import { byteSize } from '../files.js';
import { deleteAccount, downloadExport, saveBlob } from '../account.js';
import { icon } from './icons.js';
import { modal, toast } from './dialogs.js';

export function settingsDialog(store, push) {
  const open = new AbortController(); // aborted when the dialog closes: its listeners go
  const body = h(
    'div',
    { class: 'dialog-body settings' },
    h('h3', {}, 'Notifications'),
    pushRows(store, push, open.signal),
    h('h3', {}, 'Your data'),
    exportRow(store),
    h('h3', {}, 'Delete account'),
    h('p', { class: 'hint' }, 'Deleting your account erases your messages and files for everyone. It cannot be undone.'),
    h('div', { class: 'dialog-actions start' }, h('button', { id: 'delete-account', type: 'button', class: 'danger-button', onclick: () => deleteDialog(store) }, 'Delete my account…')),
  );
  const dlg = modal('dlg-settings', 'Settings', body);
  dlg.addEventListener('close', () => open.abort());
  dlg.querySelector('button:not(:disabled), input:not(:disabled)')?.focus();
  return dlg;
}

/**
 * The push rows. The hide-text switch shows the store's value (see
 * PushPrivacy): read when the dialog opens, then following changes made on
 * other devices and, after a reconnect, the value read again, until signal
 * aborts.
 */
function pushRows(store, push, signal) {
  const sw = push.switchButton('settings-push');
  sw.setAttribute('aria-labelledby', 'settings-push-label');
  const privacy = store.pushPrivacy;
  const hide = h('input', { id: 'push-hide-text', type: 'checkbox', disabled: true, 'aria-describedby': 'push-hide-hint' });
  const hint = 'Notifications then say who wrote in which conversation, but not what. This applies to all your devices.';
  const note = h('p', { id: 'push-hide-hint', class: 'hint' }, hint);
  let saving = false; // the switch shows what the user asked for until the server answers
  let read = false; // this dialog's read (or a later value) has come
  const show = () => {
    if (saving || !read || !privacy.settings) return;
    hide.checked = privacy.settings.hide_text;
    hide.disabled = false;
    hide.dataset.loaded = 'true';
    note.textContent = hint;
  };
  hide.addEventListener('change', async () => {
    const want = hide.checked;
    hide.disabled = true;
    saving = true;
    try {
      const s = await privacy.set({ hide_text: want });
      toast(s.hide_text ? 'Notifications will not show message text.' : 'Notifications will show message text.');
    } catch (e) {
      toast('Could not save: ' + e.message);
    } finally {
      saving = false;
      show();
    }
  });
  store.addEventListener(
    'change',
    (e) => {
      if (e.detail.what !== 'push') return;
      read = true; // whatever the store hears once the dialog is open is as new as the dialog's read
      show();
    },
    { signal },
  );
  privacy.load().then(
    (s) => {
      if (!s) return; // a newer read is on its way; its answer shows
      read = true;
      show();
    },
    (e) => {
      if (!read) note.textContent = 'Could not load this setting: ' + e.message;
    },
  );
  return [
    h('div', { class: 'setting-row', hidden: sw.hidden }, h('span', { id: 'settings-push-label' }, 'Push notifications in this browser'), sw),
    h('div', { class: 'setting-row' }, h('label', { for: 'push-hide-text' }, 'Hide message text in notifications'), hide),
    note,
  ];
}

const EXPORT_ERRORS = {
  too_large: 'Your data is larger than this server can export at once. Ask its operator for help.',
  rate_limited: 'The server is busy making other exports.',
};

function exportRow(store) {
  const status = h('p', { id: 'export-status', class: 'hint', role: 'status' });
  const progress = h('progress', { id: 'export-progress', hidden: true, 'aria-label': 'Download progress' });
  const cancel = h('button', { id: 'export-cancel', type: 'button', class: 'link', hidden: true }, 'Cancel');
  let ctl = null;
  const start = async () => {
    ctl = new AbortController();
    button.disabled = true;
    cancel.hidden = false;
    progress.hidden = false;
    progress.removeAttribute('value'); // indeterminate until bytes arrive
    status.dataset.state = 'running';
    status.textContent = 'Preparing your data…';
    try {
      const { blob, name } = await downloadExport(
        store.api,
        (got, total) => {
          if (total) {
            progress.max = total;
            progress.value = got;
          }
          if (got) status.textContent = `Downloading… ${byteSize(got)}${total ? ' of ' + byteSize(total) : ''}`;
        },
        ctl.signal,
      );
      saveBlob(blob, name);
      status.dataset.state = 'done';
      status.textContent = `Saved ${name} (${byteSize(blob.size)}).`;
    } catch (e) {
      status.dataset.state = 'failed';
      if (ctl.signal.aborted) status.textContent = 'Download cancelled.';
      else {
        const wait = e.retryAfter ? ` Try again in ${Math.ceil(e.retryAfter)} s.` : '';
        status.textContent = 'Could not download your data: ' + (EXPORT_ERRORS[e.code] ?? e.message) + wait;
        status.dataset.code = e.code ?? '';
      }
    } finally {
      ctl = null;
      button.disabled = false;
      cancel.hidden = true;
      progress.hidden = true;
    }
  };
  const button = h('button', { id: 'export', type: 'button', onclick: start }, icon('download'), 'Download my data');
  cancel.addEventListener('click', () => ctl?.abort());
  return [
    h('p', { class: 'hint' }, 'A ZIP archive of your profile, contacts, the messages and files you sent, and your conversations.'),
    h('div', { class: 'setting-row start' }, button, cancel),
    progress,
    status,
  ];
}

/** The destructive confirmation: the username typed out, and the password. */
function deleteDialog(store) {
  const username = store.me.username;
  const confirm = h('input', { id: 'delete-confirm', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', 'aria-describedby': 'delete-what' });
  const password = h('input', { id: 'delete-password', type: 'password', autocomplete: 'current-password' });
  const error = h('p', { id: 'delete-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { id: 'delete-submit', type: 'submit', class: 'danger-button', disabled: true }, 'Delete my account for good');
  const ready = () => (submit.disabled = confirm.value.trim().toLowerCase() !== username || !password.value);
  confirm.addEventListener('input', ready);
  password.addEventListener('input', ready);
  const form = h(
    'form',
    { class: 'dialog-body' },
    h(
      'div',
      { id: 'delete-what', class: 'danger-note' },
      h('p', {}, h('strong', {}, 'This deletes your account for good.')),
      h('ul', {},
        h('li', {}, 'You leave every conversation.'),
        h('li', {}, 'Every message you sent is erased, for everyone.'),
        h('li', {}, 'Your files, picture, contacts and blocks are deleted.'),
        h('li', {}, 'Your username becomes free for anyone to take.'),
      ),
      h('p', {}, 'Download your data first if you want to keep a copy.'),
    ),
    h('label', { for: 'delete-confirm' }, 'Type your username, ', h('strong', {}, username), ', to confirm'),
    confirm,
    h('label', { for: 'delete-password' }, 'Your password'),
    password,
    error,
    h('div', { class: 'dialog-actions' }, h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), submit),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (ready()) return;
    submit.disabled = true;
    error.textContent = '';
    try {
      await deleteAccount(store.api, store.me.id, password.value);
    } catch (err) {
      error.textContent =
        err.code === 'invalid_credentials' ? 'Wrong password.' : err.code === 'rate_limited' ? 'Too many attempts. Wait a moment and try again.' : 'Could not delete the account: ' + err.message;
      ready();
      password.select();
      return;
    }
    dlg.close();
    document.getElementById('dlg-settings')?.close();
    toast('Your account was deleted.');
  });
  const dlg = modal('dlg-delete-account', 'Delete your account?', form);
  confirm.focus();
}
