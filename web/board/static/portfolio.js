// portfolio.js: the signed-in user's portfolio, valued live from the
// node's portfolio frames: the base-currency total, totals per currency,
// and each position with its P&L coloured up or down.

import * as format from './format.js';
import { el, sign } from './table.js';

function pnl(v, currency, rate) {
  const s = format.change(v, currency, Math.abs(v));
  return rate === undefined ? s : s + ' (' + format.rate(rate / 100) + ')'; // pnl_rate is in percent
}

/** Portfolio draws frames into box, at most once per animation frame. */
export class Portfolio {
  constructor(box) {
    this.box = box;
    this.frame = null;
    this.raf = 0;
  }

  clear() {
    this.frame = null;
    this.box.hidden = true;
    this.box.replaceChildren();
  }

  show(f) {
    this.frame = f;
    if (!this.raf) this.raf = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.raf = 0;
    const f = this.frame;
    if (!f) return;
    this.box.hidden = false;
    const head = el('h2', '', 'Portfolio');
    const total = el('div', 'ptotal');
    if (f.total) {
      total.dataset.value = String(f.total.value);
      total.append(
        el('span', 'pvalue', format.price(f.total.value, f.total.currency)),
        el('span', 'num ' + sign(f.total.pnl), pnl(f.total.pnl, f.total.currency, f.total.pnl_rate)),
      );
    }
    const totals = el('ul', 'ptotals');
    for (const t of f.totals || []) {
      const li = el('li');
      li.dataset.currency = t.currency;
      li.append(el('span', '', t.currency + ' ' + format.price(t.value, t.currency)), el('span', 'num ' + sign(t.pnl), pnl(t.pnl, t.currency, t.pnl_rate)));
      totals.append(li);
    }
    const table = el('table', 'positions');
    const hr = el('tr');
    for (const h of ['Symbol', 'Qty', 'Price', 'Value', 'P&L']) hr.append(el('th', h === 'Symbol' ? '' : 'num', h));
    table.append(hr);
    for (const p of f.positions || []) {
      const tr = el('tr');
      tr.dataset.position = p.symbol;
      tr.append(
        el('td', 'sym', p.symbol),
        el('td', 'num', String(p.quantity)),
        el('td', 'num', p.priced ? format.price(p.price, p.currency) : '—'),
        el('td', 'num value', p.priced ? format.price(p.value, p.currency) : '—'),
        el('td', 'num pnl ' + (p.priced ? sign(p.pnl) : 'flat'), p.priced ? pnl(p.pnl, p.currency, p.pnl_rate) : 'unpriced'),
      );
      table.append(tr);
    }
    this.box.replaceChildren(head, total, totals, table);
  }
}
