// chart.js: one symbol's candles as SVG, drawn here (no library): bodies
// and wicks, the moving averages the node computes (ma=5,20), and the
// newest candle kept live from the quotes the board receives (its close,
// high and low; a new period starts a new candle).

import * as api from './api.js';
import * as format from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 720;
const H = 260;
const PAD = 8;
const MA = [5, 20];
const PERIOD_MS = { '1m': 60e3, '5m': 300e3, '1h': 3600e3, '1d': 86400e3 };

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

/** sma is the mean of the n closes ending at i, or null. */
function sma(candles, n, i) {
  if (i + 1 < n) return null;
  let s = 0;
  for (let j = i - n + 1; j <= i; j++) s += candles[j].c;
  return s / n;
}

/** Chart draws into box (a section with a title, buttons and a drawing). */
export class Chart {
  constructor(box, { notice }) {
    this.box = box;
    this.notice = notice;
    this.symbol = '';
    this.currency = '';
    this.interval = '1m';
    this.candles = [];
    this.ma = {};
    this.ctl = null;
    this.raf = 0;
    this.title = box.querySelector('.chart-title');
    this.draw_ = box.querySelector('.chart-draw');
    for (const b of box.querySelectorAll('button[data-interval]')) {
      b.addEventListener('click', () => this.open(this.symbol, b.dataset.interval));
    }
    box.querySelector('.chart-close').addEventListener('click', () => this.close());
  }

  /** open shows symbol's candles of interval (the one shown if omitted). */
  async open(symbol, interval = this.interval) {
    if (!symbol) return;
    if (symbol !== this.symbol) this.currency = '';
    this.symbol = symbol;
    this.interval = interval;
    this.candles = [];
    this.box.hidden = false;
    this.box.dataset.symbol = symbol;
    this.box.dataset.interval = interval;
    this.box.dataset.state = 'loading';
    for (const b of this.box.querySelectorAll('button[data-interval]')) b.classList.toggle('on', b.dataset.interval === interval);
    this.title.textContent = symbol + ' · ' + interval;
    if (this.ctl) this.ctl.abort();
    const ctl = (this.ctl = new AbortController());
    try {
      const chart = await api.candles(symbol, interval, { ma: MA, signal: ctl.signal });
      if (ctl !== this.ctl) return;
      this.candles = chart.candles || [];
      this.ma = chart.ma || {};
      this.box.dataset.state = 'ready';
      this.schedule();
    } catch (e) {
      if (e.name === 'AbortError' || ctl !== this.ctl) return;
      this.box.dataset.state = 'error';
      this.draw_.replaceChildren();
      this.notice('Chart of ' + symbol + ': ' + e.message);
    }
  }

  close() {
    if (this.ctl) this.ctl.abort();
    this.ctl = null;
    this.symbol = '';
    this.box.hidden = true;
    this.draw_.replaceChildren();
  }

  /** quote folds a live quote of the shown symbol into the newest candle. */
  quote(q) {
    if (q.symbol !== this.symbol) return;
    this.currency = q.currency;
    if (!this.candles.length) return;
    const last = this.candles[this.candles.length - 1];
    const period = PERIOD_MS[this.interval];
    const at = q.fetched_at;
    if (at < last.t) return;
    if (last.closed || at >= last.t + period) {
      if (at < last.t + period) return; // a closed candle never changes
      const t = last.t + Math.floor((at - last.t) / period) * period;
      this.candles.push({ t, o: q.price, h: q.price, l: q.price, c: q.price, v: 0, closed: false });
      this.candles.shift();
      for (const n of MA) {
        if (!this.ma[n]) continue;
        this.ma[n].push(null);
        this.ma[n].shift();
      }
    } else {
      last.c = q.price;
      last.h = Math.max(last.h, q.price);
      last.l = Math.min(last.l, q.price);
    }
    const i = this.candles.length - 1;
    for (const n of MA) {
      const v = sma(this.candles, n, i);
      if (this.ma[n] && v !== null) this.ma[n][i] = v;
    }
    this.schedule();
  }

  schedule() {
    if (!this.raf) this.raf = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.raf = 0;
    const cs = this.candles;
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'chart-svg', role: 'img' });
    root.setAttribute('aria-label', this.symbol + ' ' + this.interval + ' candles');
    root.dataset.candles = String(cs.length);
    if (!cs.length) {
      this.draw_.replaceChildren(root);
      return;
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of cs) {
      lo = Math.min(lo, c.l);
      hi = Math.max(hi, c.h);
    }
    if (hi === lo) hi = lo + 1;
    const y = (v) => PAD + ((hi - v) / (hi - lo)) * (H - 2 * PAD);
    const step = (W - 2 * PAD) / cs.length;
    const x = (i) => PAD + step * (i + 0.5);
    const body = Math.max(1, step * 0.7);
    cs.forEach((c, i) => {
      const g = svg('g', { class: 'candle ' + (c.c >= c.o ? 'up' : 'down') });
      g.append(svg('line', { x1: x(i), x2: x(i), y1: y(c.h), y2: y(c.l) }));
      const top = y(Math.max(c.o, c.c));
      g.append(svg('rect', { x: x(i) - body / 2, y: top, width: body, height: Math.max(1, y(Math.min(c.o, c.c)) - top) }));
      root.append(g);
    });
    for (const n of MA) {
      const pts = (this.ma[n] || []).map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean);
      if (pts.length < 2) continue;
      const line = svg('polyline', { class: 'ma ma-' + n, points: pts.join(' ') });
      line.dataset.ma = String(n);
      root.append(line);
    }
    const last = cs[cs.length - 1];
    root.dataset.close = String(last.c);
    this.title.textContent = this.symbol + ' · ' + this.interval + ' · ' + format.price(last.c, this.currency) + ' · MA ' + MA.join('/');
    this.draw_.replaceChildren(root);
  }
}
