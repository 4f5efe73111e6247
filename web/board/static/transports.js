// transports.js: the two ways of receiving quotes, WebSocket and SSE, as
// drivers of one shape. A driver opens one connection for a list of symbols
// and reports through ev:
//   ev.live({node})          the connection is up
//   ev.quotes([quote...])    quotes arrived (receive time is taken by the caller)
//   ev.rejected([{symbol, code, message}...])
//   ev.closed(reason)        the connection is gone (once); the caller reconnects
//   ev.list({list, added, dropped})  a followed list gained or lost symbols
//   ev.portfolio(frame)      a live valuation of the followed portfolio
// auth is {token, lists}: the signed-in user's token ('' for none) and the
// lists to follow ("watchlist:ID", "portfolio").
// It returns {sync(symbols) -> bool, close()}: sync changes the symbols on
// the open connection, or returns false when only a new connection can
// (then the caller reopens).

const SUBSCRIBE_CHUNK = 50; // keeps each request well under max_message_bytes

function endpoint(path, scheme) {
  const url = new URL(path, location.href);
  if (scheme) url.protocol = location.protocol === 'https:' ? scheme + 's:' : scheme + ':';
  return url;
}

/** ws opens a WebSocket at /v1/ws, subscribing at connect with ?symbols=. */
export function ws(symbols, ev, auth = {}) {
  const url = endpoint('/v1/ws', 'ws');
  if (symbols.length) url.searchParams.set('symbols', symbols.join(','));
  if (auth.token) url.searchParams.set('token', auth.token);
  const lists = auth.token ? auth.lists || [] : [];
  const sock = new WebSocket(url);
  let held = new Set(symbols);
  let want = null; // symbols asked for before the welcome
  let done = false;

  const send = (op, list) => {
    for (let i = 0; i < list.length; i += SUBSCRIBE_CHUNK) {
      sock.send(JSON.stringify({ op, symbols: list.slice(i, i + SUBSCRIBE_CHUNK) }));
    }
  };
  const apply = (list) => {
    const next = new Set(list);
    const add = list.filter((s) => !held.has(s));
    const drop = [...held].filter((s) => !next.has(s));
    held = next;
    if (drop.length) send('unsubscribe', drop);
    if (add.length) send('subscribe', add);
  };
  const finish = (reason) => {
    if (done) return;
    done = true;
    ev.closed(reason);
  };

  sock.onmessage = (m) => {
    let f;
    try {
      f = JSON.parse(m.data);
    } catch {
      return;
    }
    switch (f.type) {
      case 'welcome':
        ev.live({ node: f.node, limits: f.limits });
        if (lists.length) sock.send(JSON.stringify({ op: 'follow', id: 'follow', lists }));
        if (want) apply(want);
        want = null;
        break;
      case 'quotes':
        ev.quotes(f.quotes);
        break;
      case 'subscribed':
        if (f.list) ev.list({ list: f.list, added: f.symbols || [], dropped: [] });
        if (f.rejected && f.rejected.length) ev.rejected(f.rejected);
        break;
      case 'unsubscribed':
        if (f.list) ev.list({ list: f.list, added: [], dropped: f.symbols || [] });
        break;
      case 'portfolio':
        ev.portfolio(f);
        break;
      // 'alert' frames are not read: alerts.js has them from
      // /v1/me/events, which also replays what a reconnect missed.
      case 'error':
        ev.rejected([{ symbol: '', code: f.code, message: f.message }]);
        break;
    }
  };
  sock.onclose = (e) => finish(e.code === 1006 ? 'connection lost' : 'closed ' + e.code + (e.reason ? ' ' + e.reason : ''));
  return {
    sync(list) {
      if (sock.readyState === WebSocket.OPEN && want === null) apply(list);
      else want = list;
      return true;
    },
    close() {
      done = true;
      sock.onclose = sock.onmessage = null;
      sock.close(1000);
    },
  };
}

/** sse opens an EventSource at /v1/sse?symbols=; a new list needs a new stream. */
export function sse(symbols, ev, auth = {}) {
  const lists = auth.token ? auth.lists || [] : [];
  if (!symbols.length && !lists.length) {
    // The node refuses a stream of no symbols: stay idle until there are some.
    ev.live({ node: '', idle: true });
    return { sync: (list) => list.length === 0, close() {} };
  }
  const url = endpoint('/v1/sse');
  if (symbols.length) url.searchParams.set('symbols', symbols.join(','));
  if (auth.token) url.searchParams.set('token', auth.token);
  if (lists.length) url.searchParams.set('follow', lists.join(','));
  const src = new EventSource(url);
  const key = symbols.join(',');
  let done = false;
  let opened = false;
  src.onopen = () => {
    opened = true;
    ev.live({ node: '' });
  };
  src.addEventListener('quote', (m) => {
    try {
      ev.quotes([JSON.parse(m.data)]);
    } catch {
      // a malformed event is dropped
    }
  });
  const frame = (name, f) =>
    src.addEventListener(name, (m) => {
      try {
        f(JSON.parse(m.data));
      } catch {
        // a malformed event is dropped
      }
    });
  frame('portfolio', (f) => ev.portfolio(f));
  frame('subscribed', (f) => f.list && ev.list({ list: f.list, added: f.symbols || [], dropped: [] }));
  frame('unsubscribed', (f) => f.list && ev.list({ list: f.list, added: [], dropped: f.symbols || [] }));
  src.addEventListener('error', (m) => {
    if (m instanceof MessageEvent && m.data) {
      try {
        ev.rejected([JSON.parse(m.data)]); // event: error of a rejected symbol
      } catch {
        // ignored
      }
      return;
    }
    // The stream failed or ended. EventSource would retry on its own, but
    // with its fixed delay: the caller's backoff decides instead.
    src.close();
    if (done) return;
    done = true;
    if (opened) {
      ev.closed('stream lost');
      return;
    }
    // Refused before it opened: EventSource does not show why, so ask
    // once more with fetch, which reads the error body.
    refusal(url).then((e) => {
      if (e && (e.code === 'invalid_symbol' || e.code === 'unknown_symbol')) {
        // Every symbol was rejected (else the stream would have opened).
        ev.rejected(symbols.map((symbol) => ({ symbol, code: e.code, message: e.message })));
      } else if (e) {
        ev.rejected([{ symbol: '', code: e.code, message: e.message }]);
      }
      ev.closed(e ? 'refused: ' + e.code : 'no connection');
    });
  });
  return {
    sync: (list) => list.join(',') === key,
    close() {
      done = true;
      src.close();
    },
  };
}

/**
 * refusal returns the protocol error that the node answers a stream
 * request with, or null when it cannot be reached or opens the stream.
 */
async function refusal(url) {
  const ctl = new AbortController();
  try {
    const res = await fetch(url, { signal: ctl.signal, headers: { Accept: 'text/event-stream' } });
    if (res.ok) return null;
    const body = await res.json();
    return body && body.error ? body.error : null;
  } catch {
    return null;
  } finally {
    ctl.abort(); // an opened stream is not read
  }
}
