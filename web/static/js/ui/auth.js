// The sign-in / create-account screen.

import { h } from '../dom.js';

const MESSAGES = {
  invalid_credentials: 'Wrong username or password.',
  username_taken: 'That username is taken. Try another one.',
  rate_limited: 'Too many attempts. Wait a moment and try again.',
};

/** Renders the form into root; calls done(user) after a successful sign-in or registration. */
export function authView(root, api, done) {
  let registering = false;
  const error = h('p', { id: 'auth-error', class: 'form-error', role: 'alert' });
  const username = h('input', {
    id: 'auth-username', name: 'username', autocomplete: 'username', required: true,
    minlength: 3, maxlength: 32, autocapitalize: 'none', spellcheck: 'false',
  });
  const password = h('input', { id: 'auth-password', name: 'password', type: 'password', required: true, autocomplete: 'current-password' });
  const hint = h('p', { class: 'hint', id: 'auth-hint' });
  const submit = h('button', { id: 'auth-submit', type: 'submit', class: 'primary wide' });
  const heading = h('h1', { id: 'auth-title' });
  const switcher = h('button', { id: 'auth-mode', type: 'button', class: 'link', onclick: () => setMode(!registering) });
  const prompt = h('span');

  function setMode(reg) {
    registering = reg;
    heading.textContent = reg ? 'Create your account' : 'Sign in to Natter';
    submit.textContent = reg ? 'Create account' : 'Sign in';
    prompt.textContent = reg ? 'Already have an account? ' : 'New here? ';
    switcher.textContent = reg ? 'Sign in' : 'Create an account';
    password.autocomplete = reg ? 'new-password' : 'current-password';
    password.minLength = reg ? 8 : 1;
    hint.textContent = reg ? 'Username: 3–32 letters, digits, “.”, “_” or “-”. Password: at least 8 characters, not containing the username.' : '';
    error.textContent = '';
  }

  const form = h(
    'form',
    { id: 'auth', class: 'auth-card', novalidate: true, 'aria-labelledby': 'auth-title' },
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, 'N'), 'Natter'),
    heading,
    h('label', { for: 'auth-username' }, 'Username'),
    username,
    h('label', { for: 'auth-password' }, 'Password'),
    password,
    hint,
    error,
    submit,
    h('p', { class: 'switch' }, prompt, switcher),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!username.value.trim() || !password.value) {
      error.textContent = 'Enter a username and a password.';
      return;
    }
    submit.disabled = true;
    try {
      const name = username.value.trim();
      const user = registering ? await api.register(name, password.value) : await api.login(name, password.value);
      done(user);
    } catch (err) {
      error.textContent = MESSAGES[err.code] || err.message || 'Something went wrong. Try again.';
      submit.disabled = false;
    }
  });
  setMode(false);
  root.replaceChildren(h('main', { class: 'auth-page' }, form));
  username.focus();
}
