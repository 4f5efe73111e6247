// alerts.js: the signed-in user's fired alerts, from GET /v1/me/events
// (EventSource with ?token=), shown as notes in the page, and as browser
// notifications only where the user already granted them (the board never
// asks).

import * as format from './format.js';

const SHOWN_MS = 15000;
const KEPT = 5;

function text(a) {
  const what = a.kind === 'move_pct' ? 'moved ' + a.threshold + ' %' : a.kind + ' ' + format.price(a.threshold);
  return a.symbol + ' ' + what + ' (' + a.direction + '): now ' + format.price(a.price);
}

/** Alerts shows alerts in box; open(token) streams them, close() stops. */
export class Alerts {
  constructor(box, { onLost } = {}) {
    this.box = box;
    this.src = null;
    this.onLost = onLost || (() => {});
  }

  open(token) {
    this.close();
    const url = new URL('/v1/me/events', location.href);
    url.searchParams.set('token', token);
    const src = (this.src = new EventSource(url));
    src.onopen = () => (this.box.dataset.state = 'open');
    src.addEventListener('alert', (m) => {
      try {
        this.show(JSON.parse(m.data));
      } catch {
        // a malformed event is dropped
      }
    });
    // EventSource reconnects by itself (retry: 3000, with Last-Event-ID);
    // a refusal closes it: then ask whether the token still holds.
    src.addEventListener('error', () => {
      if (src.readyState === EventSource.CLOSED && this.src === src) this.onLost();
    });
  }

  close() {
    if (this.src) this.src.close();
    this.box.dataset.state = '';
    this.src = null;
  }

  show(a) {
    const li = document.createElement('li');
    li.className = 'alert-note ' + (a.direction === 'down' ? 'down' : 'up');
    li.dataset.rule = String(a.rule_id);
    li.dataset.symbol = a.symbol;
    li.textContent = text(a);
    li.title = 'Dismiss';
    li.addEventListener('click', () => li.remove());
    this.box.prepend(li);
    while (this.box.children.length > KEPT) this.box.lastChild.remove();
    setTimeout(() => li.remove(), SHOWN_MS);
    if (typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      try {
        new Notification('quotehub alert', { body: text(a), tag: 'alert-' + (a.id || a.rule_id) });
      } catch {
        // notifications from a page need a service worker on some browsers
      }
    }
  }
}
