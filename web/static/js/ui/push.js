// The "Notifications" toggle: registers the service worker (/sw.js, root
// scope), asks for permission, subscribes with the server's VAPID key and
// registers the subscription; turning it off deletes it on both sides.
// The subscription id is kept in localStorage per user. The settings
// dialog shows the same toggle as a switch (switchButton).

import { h } from '../dom.js';
import { icon } from './icons.js';
import { toast } from './dialogs.js';

export class PushToggle {
  constructor(store) {
    this.store = store;
    this.key = 'natter.push.' + store.me.id;
    this.button = h('button', { id: 'push-toggle', type: 'button', class: 'ghost icon-button', 'aria-pressed': 'false', onclick: () => this.#toggle() }, icon('bell'));
    this.switches = new Set(); // switchButton()s shown now
    this.supported = 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
    this.#show(!!localStorage.getItem(this.key) && this.supported && Notification.permission === 'granted');
    if (!this.supported) this.button.hidden = true;
  }

  /**
   * The toggle as a labelled switch (role=switch) for the settings
   * dialog; it follows the header button while it is in the document.
   */
  switchButton(id) {
    const sw = h('button', { id, type: 'button', role: 'switch', class: 'switch-button', onclick: () => this.#toggle() }, h('span', { class: 'knob', 'aria-hidden': 'true' }));
    sw.hidden = !this.supported;
    sw.setAttribute('aria-checked', String(this.on));
    sw.disabled = this.button.disabled;
    this.switches.add(sw);
    return sw;
  }

  #show(on, busy = false) {
    this.on = on;
    this.button.setAttribute('aria-pressed', String(on));
    const label = on ? 'Notifications on (turn off)' : 'Notifications off (turn on)';
    this.button.setAttribute('aria-label', label);
    this.button.title = label;
    this.button.disabled = busy;
    for (const sw of this.switches) {
      if (!sw.isConnected) {
        this.switches.delete(sw); // its dialog closed
        continue;
      }
      sw.setAttribute('aria-checked', String(on));
      sw.disabled = busy;
    }
  }

  async #toggle() {
    this.#show(this.on, true);
    try {
      if (this.on) await this.#disable();
      else await this.#enable();
    } catch (e) {
      this.button.dataset.error = e.message;
      toast('Notifications: ' + e.message);
    } finally {
      this.#show(this.on);
    }
  }

  async #enable() {
    const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    if ((await Notification.requestPermission()) !== 'granted') throw new Error('the browser does not allow notifications for this site.');
    const { public_key: key } = await this.store.api.request('GET', '/v1/push/vapid-public-key');
    await navigator.serviceWorker.ready;
    let sub;
    try {
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromBase64URL(key) });
    } catch (e) {
      throw new Error('this browser could not subscribe to push messages (' + e.message + ').');
    }
    const { subscription } = await this.store.api.request('POST', '/v1/push/subscriptions', sub.toJSON());
    localStorage.setItem(this.key, subscription.id);
    this.#show(true);
    toast('Notifications are on for this browser.');
  }

  async #disable() {
    const id = localStorage.getItem(this.key);
    const reg = await navigator.serviceWorker.getRegistration('/');
    const sub = await reg?.pushManager.getSubscription();
    await sub?.unsubscribe();
    if (id) await this.store.api.request('DELETE', '/v1/push/subscriptions/' + id).catch((e) => e.status === 404 || Promise.reject(e));
    localStorage.removeItem(this.key);
    this.#show(false);
    toast('Notifications are off.');
  }
}

function fromBase64URL(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}
