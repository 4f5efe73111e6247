// feed.js: keeps one live connection to the node for the board's symbols,
// over the chosen transport; reconnects after any loss with jittered
// exponential backoff and subscribes again to the current symbols.

import { Backoff } from './backoff.js';
import * as transports from './transports.js';

const HEALTHY_AFTER = 5000; // a connection up this long resets the backoff
const REOPEN_DELAY = 150; // coalesces symbol changes that need a new stream

/**
 * Feed reports to its handlers:
 *   onQuotes(quotes, receivedAt)
 *   onRejected([{symbol, code, message}])
 *   onState({state, transport, node, reason, retryAt, attempt})
 * with state one of connecting, live, idle (nothing to stream), waiting
 * (lost; retryAt says when the next try is); and, signed in,
 *   onList({list, added, dropped})  a followed list's symbols changed
 *   onPortfolio(frame)              the followed portfolio's valuation
 */
export class Feed {
  constructor({ transport = 'ws', onQuotes, onRejected, onState, onList, onPortfolio }) {
    this.kind = transport in transports ? transport : 'ws';
    const none = () => {};
    this.handlers = { onQuotes, onRejected, onState, onList: onList || none, onPortfolio: onPortfolio || none };
    this.auth = { token: '', lists: [] };
    this.symbols = [];
    this.backoff = new Backoff();
    this.conn = null;
    this.gen = 0; // connection generation: events of an old one are ignored
    this.timer = 0;
    this.healthy = 0;
  }

  get transport() {
    return this.kind;
  }

  /** start opens the first connection. */
  start() {
    this.open();
  }

  /** setSymbols makes the connection carry exactly these symbols. */
  setSymbols(list) {
    this.symbols = [...list];
    if (this.conn && this.conn.sync(this.symbols)) return;
    if (this.conn) {
      // Coalesce: adding ten symbols in a row reopens once.
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.open(), REOPEN_DELAY);
    }
  }

  /**
   * setAuth opens a new connection with the user's token ('' to sign
   * out) following lists ("watchlist:ID", "portfolio").
   */
  setAuth(token, lists) {
    const next = { token: token || '', lists: token ? [...lists] : [] };
    if (next.token === this.auth.token && next.lists.join(',') === this.auth.lists.join(',')) return;
    this.auth = next;
    this.backoff.reset();
    if (this.conn) this.open();
  }

  /** use switches to the other transport at once. */
  use(kind) {
    if (!(kind in transports) || kind === this.kind) return;
    this.kind = kind;
    this.backoff.reset();
    this.open();
  }

  close() {
    this.drop();
    clearTimeout(this.timer);
  }

  drop() {
    this.gen++;
    clearTimeout(this.healthy);
    if (this.conn) this.conn.close();
    this.conn = null;
  }

  state(s) {
    this.handlers.onState({ transport: this.kind, ...s });
  }

  open() {
    this.drop();
    clearTimeout(this.timer);
    const gen = this.gen;
    const mine = (f) => (...a) => {
      if (gen === this.gen) f(...a);
    };
    this.state({ state: 'connecting' });
    this.conn = transports[this.kind](this.symbols, {
      live: mine((info) => {
        this.state({ state: info.idle ? 'idle' : 'live', node: info.node, limits: info.limits });
        this.healthy = setTimeout(() => this.backoff.reset(), HEALTHY_AFTER);
      }),
      quotes: mine((qs) => this.handlers.onQuotes(qs, Date.now())),
      rejected: mine((list) => this.handlers.onRejected(list)),
      closed: mine((reason) => this.lost(reason)),
      list: mine((l) => this.handlers.onList(l)),
      portfolio: mine((f) => this.handlers.onPortfolio(f)),
    }, this.auth);
  }

  lost(reason) {
    this.drop();
    clearTimeout(this.timer); // a reopen that was due is this retry now
    const wait = this.backoff.next();
    const retryAt = Date.now() + wait;
    this.state({ state: 'waiting', reason, retryAt, attempt: this.backoff.attempt });
    this.timer = setTimeout(() => this.open(), wait);
  }
}
