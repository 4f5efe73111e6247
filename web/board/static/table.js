// table.js: the table of live prices. Quotes are recorded as they arrive
// but drawn once per animation frame: however many arrive in between, each
// changed row is written once, with its newest quote.
//
// A change flashes the price cell by a class that a later frame takes off,
// not by a CSS animation: animating 200 backgrounds repaints the table at
// every frame, which cost a software-rendered page two thirds of its
// frames with 200 symbols changing several times a second.

import * as format from './format.js';
import { History, sparkline, draw } from './spark.js';

/** el makes an element with a class and text (both optional). */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const FLASH_MS = 400;
const FLASH_CHECK_MS = 100;

/** sign names the direction of v as the stylesheet's classes do. */
export function sign(v) {
  return v > 0 ? 'up' : v < 0 ? 'down' : 'flat';
}

/** Row is one symbol's line and what the board has seen of it. */
class Row {
  constructor(symbol, name, onRemove) {
    this.symbol = symbol;
    this.history = new History();
    this.quote = null;
    this.shown = null; // the quote on screen
    this.flashEnd = 0; // when the price cell's flash ends (performance.now)
    const tr = (this.tr = el('tr'));
    tr.dataset.symbol = symbol;
    const sym = el('td', 'sym');
    sym.append(el('strong', '', symbol), el('small', 'name', name || ''));
    this.name = sym.lastChild;
    this.market = el('span', 'badge', '…');
    const mkt = el('td', 'mkt');
    mkt.append(this.market);
    this.price = el('td', 'num price', '—');
    this.change = el('td', 'num chg', '');
    this.rate = el('td', 'num rate', '');
    this.spark = sparkline();
    const sp = el('td', 'sparkcell');
    sp.append(this.spark);
    this.age = el('td', 'num age', '');
    const rm = el('button', 'remove', '×');
    rm.type = 'button';
    rm.title = 'Remove ' + symbol;
    rm.setAttribute('aria-label', 'Remove ' + symbol);
    rm.addEventListener('click', () => onRemove(symbol));
    const act = el('td', 'act');
    act.append(rm);
    tr.append(sym, mkt, this.price, this.change, this.rate, sp, this.age, act);
  }

  setName(name) {
    if (name) this.name.textContent = name;
  }

  /**
   * render writes the newest quote; called inside an animation frame at
   * now. It reports whether the price cell flashes.
   */
  render(now) {
    const q = this.quote;
    const prev = this.shown;
    this.shown = q;
    this.tr.dataset.seq = String(q.seq);
    this.price.textContent = format.price(q.price, q.currency);
    const moved = prev && prev.price !== q.price;
    if (moved) {
      this.price.className = 'num price flash ' + sign(q.price - prev.price);
      this.flashEnd = now + FLASH_MS;
    }
    if (q.change !== undefined) {
      this.change.textContent = format.change(q.change, q.currency, q.price);
      this.change.className = 'num chg ' + sign(q.change);
    } else {
      this.change.textContent = '';
    }
    if (q.change_rate !== undefined) {
      this.rate.textContent = format.rate(q.change_rate);
      this.rate.className = 'num rate ' + sign(q.change_rate);
    } else {
      this.rate.textContent = '';
    }
    const open = q.market === 'open';
    this.market.textContent = open ? 'open' : 'closed';
    this.market.className = 'badge ' + (open ? 'open' : 'closed');
    this.age.textContent = format.age(this.ageMs);
    draw(this.spark, this.history.values);
    return moved;
  }

  /** unflash ends the flash, keeping the colour of the last move. */
  unflash() {
    this.price.classList.remove('flash');
  }
}

/** Table owns the rows of tbody. */
export class Table {
  constructor(tbody, { onRemove, onFrame }) {
    this.tbody = tbody;
    this.rows = new Map();
    this.dirty = new Set();
    this.flashing = new Set();
    this.named = new Set(); // rows with a name to show
    this.frame = 0;
    this.flashTimer = 0;
    this.onRemove = onRemove;
    this.onFrame = onFrame || (() => {});
  }

  has(symbol) {
    return this.rows.has(symbol);
  }

  /** setName shows a name found later, at the next frame like a quote. */
  setName(symbol, name) {
    const row = this.rows.get(symbol);
    if (!row) return;
    row.laterName = name;
    this.named.add(row);
    this.schedule();
  }

  add(symbol, name) {
    const known = this.rows.get(symbol);
    if (known) {
      known.setName(name);
      return;
    }
    const row = new Row(symbol, name, this.onRemove);
    this.rows.set(symbol, row);
    this.tbody.append(row.tr);
  }

  /** symbols lists the rows' symbols in order. */
  symbols() {
    return [...this.rows.keys()];
  }

  /** clear takes every row away. */
  clear() {
    for (const s of [...this.rows.keys()]) this.remove(s);
  }

  remove(symbol) {
    const row = this.rows.get(symbol);
    if (!row) return;
    row.tr.remove();
    this.rows.delete(symbol);
    this.dirty.delete(symbol);
    this.flashing.delete(row);
    this.named.delete(row);
  }

  /**
   * push records quotes received at receivedAt (ms): history and delivery
   * age now, drawing at the next frame. It returns the delivery ages of the
   * updates among them. A quote older than the one held
   * (a lower seq) is ignored; the same seq again (a snapshot after a
   * reconnect) is drawn but adds no point to the history.
   */
  push(quotes, receivedAt) {
    const ages = [];
    for (const q of quotes) {
      const row = this.rows.get(q.symbol);
      if (!row) continue;
      const held = row.quote;
      if (held && q.seq < held.seq) continue;
      const ageMs = receivedAt - q.fetched_at;
      if (!held || q.seq > held.seq) row.history.push(q.price);
      // A first quote is a snapshot, as old as the value is: only updates
      // measure delivery.
      if (held && q.seq > held.seq) ages.push(ageMs);
      row.quote = q;
      row.ageMs = ageMs;
      this.dirty.add(q.symbol);
    }
    if (this.dirty.size) this.schedule();
    return ages;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame((now) => this.flush(now));
  }

  flush(now) {
    this.frame = 0;
    for (const row of this.flashing) {
      if (row.flashEnd <= now) {
        row.unflash();
        this.flashing.delete(row);
      }
    }
    for (const row of this.named) row.setName(row.laterName);
    this.named.clear();
    for (const s of this.dirty) {
      const row = this.rows.get(s);
      if (row.render(now)) this.flashing.add(row);
    }
    const n = this.dirty.size;
    this.dirty.clear();
    if (this.flashing.size && !this.flashTimer) {
      this.flashTimer = setTimeout(() => {
        this.flashTimer = 0;
        this.schedule();
      }, FLASH_CHECK_MS);
    }
    this.onFrame(n);
  }
}
