// api.js: the node's HTTP API. Every request of the board goes through
// request, which adds the signed-in user's token (Authorization: Bearer)
// and reports a refused token once, to whoever listens (session.js).

/** ApiError carries the protocol's error code ({"error":{"code","message"}}). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let token = '';
let authLost = () => {};

/** setToken makes every later request carry token ('' for none). */
export function setToken(t) {
  token = t || '';
}

/** currentToken is the token requests carry now ('' when signed out). */
export function currentToken() {
  return token;
}

/** onAuthLost(f): f(message) runs when the node refuses the token (401). */
export function onAuthLost(f) {
  authLost = f;
}

/** request sends a request to a path of the node and decodes the JSON reply. */
export async function request(method, path, { body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const sent = token;
  const res = await fetch(path, { method, signal, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let reply = null;
  try {
    reply = await res.json();
  } catch {
    // not JSON (or no body): reported below by status
  }
  if (!res.ok) {
    const e = reply && reply.error;
    const err = new ApiError(res.status, e ? e.code : 'http_' + res.status, e ? e.message : res.statusText);
    if (res.status === 401 && sent && sent === token) authLost(err.message);
    throw err;
  }
  return reply;
}

/** getJSON fetches a path of the node. */
export function getJSON(path, opts) {
  return request('GET', path, opts);
}

/** searchSymbols asks the catalogue (symbols and names, Korean too). */
export async function searchSymbols(q, { limit = 10, signal } = {}) {
  const params = new URLSearchParams({ q, limit: String(limit) });
  const body = await getJSON('/v1/symbols?' + params, { signal });
  return body.symbols || [];
}

/** me names the signed-in user: {user, expires}. */
export function me(opts) {
  return getJSON('/v1/me', opts);
}

/** watchlists lists the user's watchlists. */
export async function watchlists(opts) {
  return (await getJSON('/v1/me/watchlists', opts)).watchlists || [];
}

/** watchlist reads one watchlist. */
export function watchlist(id, opts) {
  return getJSON('/v1/me/watchlists/' + encodeURIComponent(id), opts);
}

/** candles reads a symbol's chart with its moving averages. */
export function candles(symbol, interval, { count = 120, ma = [5, 20], signal } = {}) {
  const params = new URLSearchParams({ interval, count: String(count), ma: ma.join(',') });
  return getJSON('/v1/candles/' + encodeURIComponent(symbol) + '?' + params.toString().replace(/%2C/g, ','), { signal });
}
