// The user's own profile: picture, display name and status text, edited
// in a dialog opened from the sidebar's header.

import { h } from '../dom.js';
import { modal, toast } from './dialogs.js';
import { userAvatar } from './avatar.js';

const MAX_AVATAR_BYTES = 5 * 1024 * 1024; // the server's limit (protocol: Avatars)
const AVATAR_ERRORS = {
  too_large: 'That picture is too large: at most 5 MB and 50 megapixels.',
  unsupported_media_type: 'That file is not a JPEG, PNG, GIF or WebP image.',
  not_found: 'This server does not take profile pictures.',
};

/** The picture part of the profile dialog: preview, upload and remove. */
function avatarEditor(store) {
  const me = store.me;
  const preview = h('span', { id: 'avatar-preview', class: 'avatar-preview' });
  const input = h('input', { id: 'avatar-input', type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', class: 'visually-hidden', tabindex: '-1', 'aria-hidden': 'true' });
  const upload = h('button', { id: 'avatar-upload', type: 'button', onclick: () => input.click() });
  const remove = h('button', { id: 'avatar-remove', type: 'button', class: 'link danger' }, 'Remove picture');
  const status = h('p', { id: 'avatar-status', class: 'hint', role: 'status' });
  const render = () => {
    const profile = store.profile(me.id);
    preview.replaceChildren(userAvatar(store, me.id, profile?.display_name || me.username, 'large'));
    upload.textContent = profile?.avatar ? 'Change picture' : 'Add a picture';
    remove.hidden = !profile?.avatar;
  };
  const busy = async (text, fn) => {
    upload.disabled = remove.disabled = true;
    status.textContent = text;
    status.dataset.state = 'busy';
    try {
      await fn();
      status.textContent = '';
      status.dataset.state = 'done';
    } catch (e) {
      status.textContent = AVATAR_ERRORS[e.code] ?? 'Could not change the picture: ' + e.message;
      status.dataset.state = 'failed';
    } finally {
      upload.disabled = remove.disabled = false;
      render();
    }
  };
  input.addEventListener('change', () => {
    const file = input.files[0];
    input.value = '';
    if (!file) return;
    if (file.size > MAX_AVATAR_BYTES) {
      status.textContent = AVATAR_ERRORS.too_large;
      status.dataset.state = 'failed';
      return;
    }
    busy('Uploading your picture…', () => store.setAvatar(file));
  });
  remove.addEventListener('click', () => busy('Removing your picture…', () => store.setAvatar(null)));
  render();
  return { el: h('div', { class: 'avatar-editor' }, preview, h('div', { class: 'avatar-actions' }, upload, remove, input), status), render };
}

export async function profileDialog(store) {
  const picture = avatarEditor(store);
  const name = h('input', { id: 'profile-name', maxlength: '64', autocomplete: 'nickname', placeholder: store.me.username });
  const status = h('input', { id: 'profile-status', maxlength: '140', autocomplete: 'off', placeholder: 'e.g. In the mountains until Monday' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const save = h('button', { type: 'submit', id: 'profile-save', class: 'primary' }, 'Save');
  const form = h(
    'form',
    { class: 'dialog-body' },
    picture.el,
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
    store.profiles.set(user.id, { user, at: Date.now() });
    picture.render();
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
