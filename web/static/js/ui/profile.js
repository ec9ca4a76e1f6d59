// The user's own profile: display name and status text, edited in a
// dialog opened from the sidebar's header.

import { h } from '../dom.js';
import { modal, toast } from './dialogs.js';

export async function profileDialog(store) {
  const name = h('input', { id: 'profile-name', maxlength: '64', autocomplete: 'nickname', placeholder: store.me.username });
  const status = h('input', { id: 'profile-status', maxlength: '140', autocomplete: 'off', placeholder: 'e.g. In the mountains until Monday' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const save = h('button', { type: 'submit', id: 'profile-save', class: 'primary' }, 'Save');
  const form = h(
    'form',
    { class: 'dialog-body' },
    h('p', { class: 'hint' }, 'Your username is @' + store.me.username + '. People see your display name instead, where you set one.'),
    h('label', { for: 'profile-name' }, 'Display name'),
    name,
    h('label', { for: 'profile-status' }, 'Status'),
    status,
    error,
    h('div', { class: 'dialog-actions' }, save),
  );
  const dlg = modal('dlg-profile', 'Your profile', form);
  name.focus();
  save.disabled = true;
  try {
    const { user } = await store.api.request('GET', '/v1/users/' + store.me.id);
    name.value = user.display_name ?? '';
    status.value = user.status_text ?? '';
  } catch (e) {
    error.textContent = 'Could not load your profile: ' + e.message;
  }
  save.disabled = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    save.disabled = true;
    try {
      await store.updateProfile({ display_name: name.value.trim(), status_text: status.value.trim() });
      dlg.close();
      toast('Profile saved.');
    } catch (err) {
      error.textContent = err.code === 'invalid_argument' ? 'Please check the fields: ' + err.message : err.message;
      save.disabled = false;
    }
  });
}
