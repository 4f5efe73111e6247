// app.js: the board's entry point. It wires small modules together:
//   prefs.js      what the board remembers (localStorage, ?symbols=)
//   api.js        HTTP requests to the node
//   search.js     the catalogue search box
//   feed.js       one live connection, reconnecting (transports.js, backoff.js)
//   table.js      the rows, drawn once per animation frame (spark.js, format.js)
//   status.js     the connection badge; stats.js the delivery age figures
// A new panel (a sign-in, watchlists, a chart) is a module of its own that
// app.js wires in the same way.

import * as prefs from './prefs.js';
import { searchSymbols } from './api.js';
import * as format from './format.js';
import { searchBox } from './search.js';
import { Feed } from './feed.js';
import { Table } from './table.js';
import { statusView } from './status.js';
import { Stats } from './stats.js';

const $ = (id) => document.getElementById(id);
const DEFAULT_LIMIT = 200; // the node's max_symbols until its welcome says otherwise

let limit = DEFAULT_LIMIT;
let symbols = prefs.symbols();
const names = prefs.names();
const stats = new Stats();
let noticeTimer = 0;

function notice(msg) {
  const p = $('notice');
  p.textContent = msg;
  p.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (p.hidden = true), 6000);
}

let lastStats = 0;
function showStats() {
  const now = performance.now();
  if (now - lastStats < 500) return;
  lastStats = now;
  const s = stats.summary();
  $('stats').textContent = s.n
    ? `${symbols.length} symbols · ${s.rate.toFixed(1)} updates/s · delivery age p50 ${format.age(s.p50)}, p95 ${format.age(s.p95)} (last ${s.n})`
    : `${symbols.length} symbols · waiting for updates`;
}

const show = statusView($('status'), $('status-text'));
const table = new Table($('rows'), { onRemove: remove, onFrame: showStats });

const feed = new Feed({
  transport: prefs.transport(),
  onQuotes: (qs, at) => stats.record(table.push(qs, at)),
  onRejected: (list) => {
    for (const r of list) {
      if (r.symbol) remove(r.symbol);
    }
    notice(list.map((r) => (r.symbol ? r.symbol + ': ' : '') + r.message).join('; '));
  },
  onState: (s) => {
    if (s.limits && s.limits.max_symbols) limit = s.limits.max_symbols;
    show(s);
  },
});

function changed() {
  prefs.saveSymbols(symbols);
  prefs.saveNames(Object.fromEntries(symbols.filter((s) => names[s]).map((s) => [s, names[s]])));
  $('empty').hidden = symbols.length > 0;
  feed.setSymbols(symbols);
  lastStats = 0;
  showStats();
}

function add(info) {
  if (info.name) names[info.symbol] = info.name;
  if (symbols.includes(info.symbol)) {
    table.add(info.symbol, info.name);
    return;
  }
  if (symbols.length >= limit) {
    notice(`At most ${limit} symbols per board.`);
    return;
  }
  symbols = [...symbols, info.symbol];
  table.add(info.symbol, info.name);
  changed();
}

function remove(symbol) {
  if (!symbols.includes(symbol)) return;
  symbols = symbols.filter((s) => s !== symbol);
  table.remove(symbol);
  changed();
}

// fillNames looks up, one at a time, the names of symbols that came from a
// shared link or were stored before their names were known.
async function fillNames() {
  for (const s of symbols.filter((s) => !names[s])) {
    try {
      const hit = (await searchSymbols(s, { limit: 1 })).find((r) => r.symbol === s);
      if (!hit) continue;
      names[s] = hit.name;
      table.setName(s, hit.name);
    } catch {
      return; // the node is away; the next visit tries again
    }
  }
  changed();
}

function applyScheme(on) {
  document.body.classList.toggle('scheme-kr', on);
}

// Start.
symbols = symbols.slice(0, limit);
for (const s of symbols) table.add(s, names[s]);
$('empty').hidden = symbols.length > 0;
prefs.saveSymbols(symbols);
feed.setSymbols(symbols);
feed.start();
showStats();
fillNames();

const transport = $('transport');
transport.value = feed.transport;
transport.addEventListener('change', () => {
  prefs.saveTransport(transport.value);
  feed.use(transport.value);
});

const kr = $('scheme-kr');
kr.checked = prefs.koreanColours();
applyScheme(kr.checked);
kr.addEventListener('change', () => {
  prefs.saveKoreanColours(kr.checked);
  applyScheme(kr.checked);
});

$('share').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(location.href);
    notice('Link copied: ' + location.href);
  } catch {
    notice('Share this link: ' + location.href);
  }
});

searchBox({
  input: $('search'),
  list: $('results'),
  onPick: add,
  onError: (e) => notice('Search failed: ' + e.message),
});
