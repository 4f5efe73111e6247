// prefs.js: what the board remembers: its symbols (localStorage, and the
// ?symbols= parameter of a shared link, which wins), their names, the
// transport and the colour scheme.

const KEY = 'quotehub.board.';
const DEFAULT_SYMBOLS = ['KRW-BTC', 'KRW-ETH', 'KRW-XRP', '005930.KS', 'AAPL', 'NVDA'];

function read(name, fallback) {
  try {
    const v = localStorage.getItem(KEY + name);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback; // storage blocked or a value that is not ours
  }
}

function write(name, value) {
  try {
    localStorage.setItem(KEY + name, JSON.stringify(value));
  } catch {
    // storage full or blocked: the board still works, it only forgets
  }
}

/** normalise applies the protocol's rule: trim, upper-case ASCII letters. */
export function normalise(s) {
  return s.trim().replace(/[a-z]+/g, (m) => m.toUpperCase());
}

/** parseList splits a comma-separated list, dropping empties and repeats. */
export function parseList(s) {
  return [...new Set(s.split(',').map(normalise).filter(Boolean))];
}

/** symbols: the shared link's list if the URL has one, else the stored one. */
export function symbols() {
  const param = new URLSearchParams(location.search).get('symbols');
  if (param !== null) return parseList(param);
  const stored = read('symbols', null);
  return Array.isArray(stored) ? stored.filter((s) => typeof s === 'string') : DEFAULT_SYMBOLS;
}

/** saveSymbols stores the list and puts it in the address bar to share. */
export function saveSymbols(list) {
  write('symbols', list);
  const url = new URL(location.href);
  url.searchParams.set('symbols', list.join(','));
  history.replaceState(null, '', url.pathname + '?' + url.searchParams.toString().replace(/%2C/g, ','));
}

export function names() {
  const n = read('names', {});
  return n && typeof n === 'object' ? n : {};
}

export function saveNames(map) {
  write('names', map);
}

export function transport() {
  const t = read('transport', 'ws');
  return t === 'sse' ? 'sse' : 'ws';
}

export function saveTransport(t) {
  write('transport', t);
}

/** koreanColours defaults to on for a Korean browser. */
export function koreanColours() {
  return read('koreanColours', (navigator.language || '').toLowerCase().startsWith('ko'));
}

export function saveKoreanColours(on) {
  write('koreanColours', !!on);
}
